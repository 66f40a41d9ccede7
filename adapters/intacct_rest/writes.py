"""Creates and updates in batches, each request carrying an Idempotency-Key.

The key is derived from the records and the exact change (operation, PROJECTIDs, a digest of the
body) plus a nonce for the intent. A request whose answer was lost is resent at once with the
same key, so that the API answers it from its idempotency cache instead of running it twice; the
key is also remembered for a while, so that the engine's own resend of the identical request
replays it too. A new intent with an identical body (a name changed back and forth) gets a new
nonce: a replay of the earlier answer would otherwise report a change that was never applied.
Whether a replay is honoured is not verified against a real company, so the engine still reads a
create back before resending it after an unknown outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from secrets import token_hex
from typing import Any

from adapters.errors import PermanentError, TransientError
from adapters.intacct.models import ErrorDetail, FunctionResult, IntacctProject, Outcome
from adapters.intacct_rest.envelope import error_fields, error_of, is_idempotency_conflict, record_outcome
from adapters.intacct_rest.models import MAX_IDEMPOTENCY_KEY, PROJECT_PATH
from adapters.intacct_rest.transport import Answer, Transport

# How long a key of a request with an unknown outcome is kept for an identical resend (the API's
# cache lasts 48 h; the engine resends within minutes).
_PENDING_TTL_S = 3600.0
_MAX_REPLAYS = 2


@dataclass(frozen=True)
class Write:
    """One record's create or update: the result's controlid, its PROJECTID and REST body."""

    controlid: str
    op: str  # "create" | "update"
    project_id: str
    body: Mapping[str, Any]


class Writer:
    """Sends batches of writes of one kind and reads their per-record results."""

    def __init__(self, transport: Transport, keys: dict[str, str]) -> None:
        self._transport = transport
        self._keys = keys  # PROJECTID -> record key, shared with the reads
        self._pending: dict[str, tuple[str, float]] = {}  # digest -> (key, expiry)
        self.replays = 0

    async def send(self, op: str, writes: Sequence[Write]) -> list[FunctionResult]:
        """One request for all ``writes`` (one kind); results in their order."""
        body: Any = [dict(w.body) for w in writes] if len(writes) > 1 else dict(writes[0].body)
        if op == "update" and len(writes) == 1:
            body = {k: v for k, v in body.items() if k != "key"}
            path = f"{PROJECT_PATH}/{writes[0].body['key']}"
        else:
            path = PROJECT_PATH
        method = "POST" if op == "create" else "PATCH"
        digest = _digest(op, body)
        key = self._key_for(op, writes, digest)
        answer: Answer | None = None
        rekeyed = False
        attempt = 0
        while answer is None:
            attempt += 1
            try:
                answer = await self._transport.send(method, path, body, idempotency_key=key)
            except TransientError as exc:
                if not exc.outcome_unknown:
                    raise
                self._pending[digest] = (key, time.monotonic() + _PENDING_TTL_S)
                if attempt > _MAX_REPLAYS:
                    raise
                self.replays += 1
                await asyncio.sleep(min(exc.retry_after or 0.2 * attempt, 5.0))
                continue
            if is_idempotency_conflict(answer.status, answer.error) and not rekeyed:
                # The key met another body (or outlived the cache): a fresh key is safe, since a
                # create is protected by its unique PROJECTID and an update sets the same values.
                key, answer, rekeyed = self._fresh_key(op, writes, digest), None, True
        self._pending.pop(digest, None)
        return self._results(op, writes, answer)

    def _key_for(self, op: str, writes: Sequence[Write], digest: str) -> str:
        now = time.monotonic()
        self._pending = {d: kv for d, kv in self._pending.items() if kv[1] > now}
        pending = self._pending.get(digest)
        return pending[0] if pending else self._fresh_key(op, writes, digest)

    @staticmethod
    def _fresh_key(op: str, writes: Sequence[Write], digest: str) -> str:
        who = writes[0].project_id[:80] if len(writes) == 1 else f"batch{len(writes)}"
        return f"st-{op}-{who}-{digest[:32]}-{token_hex(6)}"[:MAX_IDEMPOTENCY_KEY]

    def _results(self, op: str, writes: Sequence[Write], answer: Answer) -> list[FunctionResult]:
        body = answer.body if isinstance(answer.body, Mapping) else {}
        result = body.get("ia::result")
        status = answer.status
        items: list[Any]
        if 200 <= status < 300:
            # A batch answers an array by position (207 when some failed); a single write, its reference.
            if isinstance(result, list):
                items = list(result)
            else:
                items = [{"ia::status": status, "ia::result": result}] if len(writes) == 1 else []
        elif len(writes) == 1 or record_outcome(status, answer.error, op) is not Outcome.PERMANENT:
            # "Only one status code and message … when it is applicable to all records".
            items = [{**body, "ia::status": status}] * len(writes)
        else:
            # One refusal for a whole batch: the engine finds the record behind it by halving.
            text = answer.error.text()[:300] if answer.error else ""
            raise PermanentError(f"Intacct refused the batch: HTTP {status} ({text})", status=status,
                                 **error_fields(answer.error))
        return [self._result(op, w, items[i] if i < len(items) else None) for i, w in enumerate(writes)]

    def _result(self, op: str, write: Write, item: Any) -> FunctionResult:
        if not isinstance(item, Mapping):
            return FunctionResult(write.controlid, op, "", Outcome.TRANSIENT,
                                  errors=(ErrorDetail("", "no result returned for this record", "", ""),))
        status = int(item.get("ia::status") or 200)
        error = error_of(item)
        outcome = record_outcome(status, error, op)
        if outcome is not Outcome.SUCCESS:
            if outcome is Outcome.NOT_EXISTING:
                self._keys.pop(write.project_id, None)
            detail = error.detail() if error else ErrorDetail("", f"HTTP {status}", "", "")
            return FunctionResult(write.controlid, op, "failure", outcome, errors=(detail,))
        ref = item.get("ia::result", item)
        ref = ref if isinstance(ref, Mapping) else {}
        key = ref.get("key") or write.body.get("key")
        record_no: int | None = None
        if key is not None:
            self._keys[write.project_id] = str(key)
            try:
                record_no = int(key)
            except (TypeError, ValueError):
                record_no = None
        project = IntacctProject(write.project_id, record_no, None, None, None, None)
        return FunctionResult(write.controlid, op, "success", Outcome.SUCCESS, projects=(project,))


def _digest(op: str, body: Any) -> str:
    canonical = json.dumps([op, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
