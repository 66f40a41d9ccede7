"""Export gating: make sure given jobs and projects exist in Intacct now (`POST /v1/ensure`, the `sync` command).

An explicit request is not retroactive sync: it works for records older than the activation time and
while automatic synchronization is off. The records are synced inline, ahead of background work,
through the same engine the workers use (and the same per-company request cap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from adapters.errors import AdapterError
from daemon import logs
from daemon.config import Config
from daemon.store import Record, RecordKey, Store
from daemon.sync.engine import PRIORITY, SyncEngine
from daemon.sync.health import ConnectionMonitor, safe_error
from daemon.sync.ingest import Ingestor
from daemon.sync.waiters import StateWaiters
from statemachine import State

log = logs.get("st_intacct_sync.ensure")

TERMINAL = {State.SYNCED, State.FAILED, State.BLOCKED}


@dataclass(frozen=True)
class EnsureResult:
    key: RecordKey
    state: str
    intacct_project_id: str | None
    error: str | None

    def public(self) -> dict[str, Any]:
        return {"kind": self.key.kind, "id": self.key.st_id, "state": self.state,
                "intacct_project_id": self.intacct_project_id, "error": self.error}


class Verdict(StrEnum):
    """What a request to ensure records came to (the HTTP layer turns it into a status code)."""

    SYNCED = "synced"  # every record is in Intacct, up to date
    DISABLED = "disabled"  # settings.enable_intacct_projects is off
    NOT_FOUND = "not-found"  # ServiceTitan does not know some of the ids
    REFUSED = "refused"  # Intacct refused a record: retrying will not help
    ABSENT = "absent"  # settled without being in Intacct (inactive in ServiceTitan): retrying will not help
    UNAVAILABLE = "unavailable"  # not yet: a system is unreachable or in error, or the time ran out


@dataclass(frozen=True)
class EnsureOutcome:
    verdict: Verdict
    results: list[EnsureResult]
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.SYNCED

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok, "results": [r.public() for r in self.results]}
        if self.message:
            body["error"] = self.message
        return body


class ExportGate:
    """Implements `POST /v1/ensure` and the `sync` command."""

    def __init__(
        self,
        store: Store,
        ingestor: Ingestor,
        engine: SyncEngine,
        intacct_monitor: ConnectionMonitor,
        servicetitan_monitor: ConnectionMonitor,
        waiters: StateWaiters,
        config: Callable[[], Config],
    ) -> None:
        self.store = store
        self.ingestor = ingestor
        self.engine = engine
        self.intacct_monitor = intacct_monitor
        self.servicetitan_monitor = servicetitan_monitor
        self.waiters = waiters
        self._config = config

    async def ensure(self, keys: Sequence[RecordKey], timeout: float) -> EnsureOutcome:
        """Sync `keys` now (with their parents) and report their states."""
        keys = list(dict.fromkeys(keys))
        settings = self._config().settings
        if not settings.enable_intacct_projects:
            return EnsureOutcome(Verdict.DISABLED, [EnsureResult(k, "disabled", None, "Intacct projects are disabled")
                                       for k in keys], "settings.enable_intacct_projects is off")
        if not settings.syncs("project") and any(k.kind == "project" for k in keys):
            off = "parent project mapping is off: ServiceTitan projects are not synced to Intacct"
            results = [EnsureResult(k, "disabled" if k.kind == "project" else "unknown", None,
                                    off if k.kind == "project" else None) for k in keys]
            return EnsureOutcome(Verdict.DISABLED, results, "settings.enable_parent_project_mapping is off")
        # `timeout` bounds the whole call, reading ServiceTitan included.
        deadline = time.monotonic() + timeout
        records = await self.store.get_many(keys)
        stale = [k for k in keys if k not in records or not records[k].up_to_date]
        if stale:
            try:
                async with asyncio.timeout(timeout):
                    report = await self.ingestor.fetch(stale, priority=PRIORITY)
            except TimeoutError:
                return self._outcome(keys, await self.store.get_many(keys),
                                     "ServiceTitan did not answer within timeout_s")
            except AdapterError as exc:
                await self.servicetitan_monitor.failed(exc)
                reason = safe_error(exc).description
                return EnsureOutcome(Verdict.UNAVAILABLE, [EnsureResult(k, "unknown", None, reason) for k in keys],
                                     "ServiceTitan could not be read")
            await self.servicetitan_monitor.succeeded()
            if report.missing:
                missing = set(report.missing)
                return EnsureOutcome(Verdict.NOT_FOUND, [
                    EnsureResult(k, "not-found" if k in missing else "unknown", None,
                                 "not found in ServiceTitan" if k in missing else None)
                    for k in keys], "unknown to ServiceTitan: " + ", ".join(str(k) for k in report.missing))
        return await self._drive(keys, deadline)

    async def _drive(self, keys: list[RecordKey], deadline: float) -> EnsureOutcome:
        boosted = False
        while True:
            records = await self.store.get_many(keys)
            open_keys = [k for k in keys if k not in records or records[k].state not in TERMINAL]
            if not open_keys or time.monotonic() >= deadline:
                return self._outcome(keys, records)
            if not self.intacct_monitor.usable:
                # The queue holds while Intacct is in error: these wait with the rest, and the
                # answer says so as soon as they are blocked (a claim in flight elsewhere ends soon).
                if await self.store.block_pending(self.intacct_monitor.blocking_error, "connection error"):
                    continue
                await self.waiters.wait(open_keys, min(0.25, max(0.0, deadline - time.monotonic())))
                continue
            wanted = self._with_parents(open_keys, records)
            if not boosted:
                await self.store.raise_priority(wanted, PRIORITY)
                boosted = True
            config = self._config()
            claimed = await self.store.claim_batch(
                self.engine.owner, max(len(wanted), 1), config.sync.lease, only=wanted,
                projects=config.settings.syncs("project"),
            )
            if claimed:
                await self.engine.process(claimed, priority=True)
                continue
            # Held by a worker (or waiting for a parent in flight): wait for it to move.
            await self.waiters.wait(open_keys, min(0.25, max(0.0, deadline - time.monotonic())))

    @staticmethod
    def _with_parents(keys: list[RecordKey], records: dict[RecordKey, Record]) -> list[RecordKey]:
        wanted = list(keys)
        for k in keys:
            r = records.get(k)
            if r is not None and r.kind == "job" and r.parent_project_id and r.st_project_id is not None:
                parent = RecordKey("project", r.st_project_id)
                if parent not in wanted:
                    wanted.insert(0, parent)
        return wanted

    @staticmethod
    def _outcome(keys: list[RecordKey], records: dict[RecordKey, Record], message: str | None = None
                 ) -> EnsureOutcome:
        results = []
        absent = False  # synced without being in Intacct (inactive in ServiceTitan, never created)
        for k in keys:
            r = records.get(k)
            if r is None:
                results.append(EnsureResult(k, "unknown", None, "not tracked"))
            elif r.state is State.SYNCED and r.synced_fields is None:
                absent = True
                results.append(EnsureResult(k, r.state.value, r.intacct_project_id,
                                            "inactive in ServiceTitan: not in Intacct"))
            else:
                error = r.last_error.text() if r.last_error and r.state is not State.SYNCED else None
                results.append(EnsureResult(k, r.state.value, r.intacct_project_id, error))
        states = {r.state for r in results}
        if states == {State.SYNCED.value} and not absent:
            verdict = Verdict.SYNCED
        elif absent and states == {State.SYNCED.value}:
            verdict = Verdict.ABSENT
        elif State.FAILED.value in states:
            verdict = Verdict.REFUSED
        else:
            verdict = Verdict.UNAVAILABLE
        return EnsureOutcome(verdict, results, message)

