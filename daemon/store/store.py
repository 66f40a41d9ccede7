"""The one class that runs SQL. Every transition is a compare-and-set guarded by the state machine.

Rows become frozen dataclasses (`daemon.records`) the moment they are read; SQL text lives in
`daemon/sql/queries.sql`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from daemon.store.facts import FactsStore, dumps, keys_of
from daemon.store.pages import PagesStore
from daemon.store.queries import queries
from daemon.store.rows import (
    Finished,
    HistoryEntry,
    Record,
    RecordError,
    RecordKey,
    Requeue,
    Synced,
    Transition,
    error_json,
)
from daemon.store.runs import ReconcileRuns
from statemachine import State, Trigger, next_state, source_values
from statemachine.order import PARENT_ERROR_CLASS

Q = queries()


def notify_channel(tenant_id: int) -> str:
    """The LISTEN/NOTIFY channel that wakes this tenant's workers."""
    return f"st_intacct_sync_{tenant_id}"


class Store(FactsStore):
    """Persistence of one tenant's records, history, cursors, settings and reconciliation runs."""

    def __init__(self, pool: asyncpg.Pool, tenant_id: int, redact: Callable[[Any], Any] | None = None) -> None:
        self.pool = pool
        self.tenant_id = tenant_id
        # Errors are stored (and later served) through the redactor: a remote error may quote a secret.
        self.redact: Callable[[Any], Any] = redact or (lambda value: value)
        self.channel = notify_channel(tenant_id)
        self._listeners: list[Callable[[Sequence[Transition]], None]] = []
        # Other jobs' tables, on the same pool: reconciliation runs, and the queue page's reads.
        self.runs = ReconcileRuns(pool, tenant_id, self.redact)
        self.pages = PagesStore(pool, tenant_id)

    def on_transitions(self, listener: Callable[[Sequence[Transition]], None]) -> None:
        """Call `listener` with every batch of transitions this store commits."""
        self._listeners.append(listener)

    def _emit(self, transitions: Sequence[Transition]) -> None:
        if transitions:
            for listener in self._listeners:
                listener(transitions)

    # ---- claims ---------------------------------------------------------------------------------

    async def claim_batch(
        self, owner: str, limit: int, lease: timedelta, *, only: Sequence[RecordKey] | None = None,
        projects: bool = True,
    ) -> list[Record]:
        """Lease up to `limit` ready records: projects first, then jobs whose parent exists.

        `only` restricts the claim to these keys (export gating syncs them inline); `projects=False`
        leaves projects out (parent mapping off: nothing goes to Intacct for them).
        """
        claim_id = uuid.uuid4()
        seconds = lease.total_seconds()
        jobs = None
        if only is not None:
            project_ids = [k.st_id for k in only if k.kind == "project"]
            jobs = [k.st_id for k in only if k.kind == "job"]
        else:
            project_ids = None
        async with self.pool.acquire() as conn, conn.transaction():
            rows = list(await conn.fetch(Q["claim_projects"], self.tenant_id, limit, owner, seconds, claim_id,
                                         project_ids, projects))
            if len(rows) < limit:
                rows += await conn.fetch(
                    Q["claim_jobs"], self.tenant_id, limit - len(rows), owner, seconds, claim_id, jobs
                )
        records = [Record.from_row(r) for r in rows]
        self._emit([Transition(r.key, "pending", "syncing", f"claimed by {owner}") for r in records])
        return records

    async def count_ready(self, cap: int) -> int:
        """Records ready to claim, counted up to `cap`."""
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval(Q["count_ready"], self.tenant_id, cap))

    async def renew_leases(self, owner: str, lease: timedelta, keys: Iterable[RecordKey] | None = None) -> int:
        """Heartbeat: push back the expiry of `owner`'s leases on `keys` (None: every lease it holds)."""
        kinds, ids = keys_of(keys) if keys is not None else (None, None)
        async with self.pool.acquire() as conn:
            status = await conn.execute(Q["renew_leases"], self.tenant_id, owner, lease.total_seconds(), kinds, ids)
        return int(status.split()[-1])

    async def release_owner(self, owner: str) -> int:
        """Give back every claim `owner` still holds (shutdown); they are read before any create."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["release_owner"], self.tenant_id, owner)
        self._emit([Transition(RecordKey(r["kind"], r["st_id"]), "syncing", "pending", "released at shutdown")
                    for r in rows])
        return len(rows)

    async def expire_leases(self) -> int:
        """Return the claims of dead workers to pending."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["expire_leases"], self.tenant_id)
        self._emit([Transition(RecordKey(r["kind"], r["st_id"]), "syncing", "pending", "lease expired")
                    for r in rows])
        return len(rows)

    # ---- results --------------------------------------------------------------------------------

    async def mark_synced(self, owner: str, results: Sequence[Synced],
                          claims: Mapping[RecordKey, uuid.UUID | None]) -> dict[RecordKey, State]:
        """Claims that succeeded; returns the state each landed in (pending if changed meanwhile).

        `claims` holds the claim id each result belongs to: a result lands only on that very claim,
        never on a later claim of the same record. Jobs that failed for a project now in Intacct go
        back to pending in the same statement.
        """
        if not results:
            return {}
        next_state(State.SYNCING, Trigger.SUCCEED)  # the moves the SQL below makes (guarded by its CAS)
        next_state(State.FAILED, Trigger.PARENT_SYNCED)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                Q["mark_synced"],
                self.tenant_id,
                owner,
                [r.key.kind for r in results],
                [r.key.st_id for r in results],
                [r.sent_hash for r in results],
                [json.dumps(r.fields, ensure_ascii=False) for r in results],
                [r.record_no for r in results],
                [r.reason for r in results],
                [claims.get(r.key) for r in results],
                [r.in_intacct for r in results],
                PARENT_ERROR_CLASS,
                "parent project synced",
            )
            if any(r["from_state"] == State.FAILED.value for r in rows):
                await conn.execute(Q["notify"], self.channel, "parent_synced")
        self._emit([Transition(RecordKey(r["kind"], r["st_id"]), r["from_state"], r["state"], r["reason"])
                    for r in rows])
        return {RecordKey(r["kind"], r["st_id"]): State(r["state"]) for r in rows
                if r["from_state"] == State.SYNCING.value}

    async def finish(self, owner: str, results: Sequence[Finished],
                     claims: Mapping[RecordKey, uuid.UUID | None]) -> dict[RecordKey, State]:
        """Claims that end otherwise than synced; each target state is checked against the table.

        Like `mark_synced`, each result lands only on the claim (`claims`) that produced it.
        """
        if not results:
            return {}
        allowed = {next_state(State.SYNCING, t) for t in (Trigger.RETRY_LATER, Trigger.FAIL,
                                                          Trigger.CONNECTION_LOST, Trigger.RELEASE)}
        for r in results:
            if r.to_state not in allowed:
                raise ValueError(f"a claim cannot end in {r.to_state.value!r}")
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                Q["finish_claims"],
                self.tenant_id,
                owner,
                [r.key.kind for r in results],
                [r.key.st_id for r in results],
                [r.to_state.value for r in results],
                [r.reason for r in results],
                [dumps(self.redact(error_json(r.error))) for r in results],
                [r.delay_s for r in results],
                [1 if r.refund_attempt else 0 for r in results],
                [r.verify_first for r in results],
                [r.sent_hash for r in results],
                [claims.get(r.key) for r in results],
                PARENT_ERROR_CLASS,
            )
        self._emit([
            Transition(RecordKey(r["kind"], r["st_id"]), "syncing", r["state"], r["reason"],
                       RecordError.from_json(r["error"]))
            for r in rows
        ])
        return {RecordKey(r["kind"], r["st_id"]): State(r["state"]) for r in rows}

    async def revive_parent_failures(self, reason: str = "parent project synced") -> int:
        """failed → pending for jobs that failed for a parent now in Intacct (a race the sweep closes)."""
        next_state(State.FAILED, Trigger.PARENT_SYNCED)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(Q["revive_parent_failures"], self.tenant_id, PARENT_ERROR_CLASS, reason)
            if rows:
                await conn.execute(Q["notify"], self.channel, "parent_synced")
        self._emit([Transition(RecordKey(r["kind"], r["st_id"]), State.FAILED.value, State.PENDING.value, reason)
                    for r in rows])
        return len(rows)

    async def release(self, owner: str, records: Sequence[Record], *, verify_first: bool) -> int:
        """Give claims back unused (graceful stop); `verify_first` when a request may have landed."""
        done = await self.finish(owner, [
            Finished(r.key, State.PENDING, "released at shutdown", r.desired_hash,
                     refund_attempt=not verify_first, verify_first=verify_first)
            for r in records
        ], {r.key: r.claim_id for r in records})
        return len(done)

    # ---- connection state -----------------------------------------------------------------------

    async def block_pending(self, error: RecordError, reason: str) -> int:
        """pending → blocked-by-connection for the whole tenant."""
        assert State.PENDING.value in source_values(Trigger.CONNECTION_LOST)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["block_pending"], self.tenant_id, dumps(self.redact(error_json(error))), reason)
        self._emit([Transition(RecordKey(r["kind"], r["st_id"]), "pending", State.BLOCKED.value, reason, error)
                    for r in rows])
        return len(rows)

    async def unblock_all(self, reason: str = "connection restored") -> int:
        """blocked-by-connection → pending, and wake the workers."""
        assert source_values(Trigger.CONNECTION_RESTORED) == [State.BLOCKED.value]
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(Q["unblock_all"], self.tenant_id, reason)
            if rows:
                await conn.execute(Q["notify"], self.channel, "unblocked")
        self._emit([Transition(RecordKey(r["kind"], r["st_id"]), State.BLOCKED.value, "pending", reason)
                    for r in rows])
        return len(rows)

    # ---- operator and repair requests -----------------------------------------------------------

    async def retry_failed(
        self, keys: Sequence[RecordKey] = (), *, all_failed: bool = False, priority: int = 0,
        reason: str = "operator retry",
    ) -> list[RecordKey]:
        """failed → pending for these keys (or every failed record)."""
        kinds, ids = keys_of(keys)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(Q["retry_failed"], self.tenant_id, kinds, ids, all_failed, priority, reason)
            if rows:
                await conn.execute(Q["notify"], self.channel, "retry")
        done = [RecordKey(r["kind"], r["st_id"]) for r in rows]
        self._emit([Transition(k, "failed", "pending", reason) for k in done])
        return done

    async def requeue(
        self, items: Sequence[Requeue], *, reason: str, priority: int = 0,
        from_states: Sequence[State] = (State.SYNCED,),
    ) -> list[RecordKey]:
        """Send records again although ST did not change: Intacct drifted (missing, renamed, ...)."""
        if not items:
            return []
        for state in from_states:
            next_state(state, Trigger.CHANGE if state is not State.FAILED else Trigger.RETRY)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                Q["requeue"],
                self.tenant_id,
                [i.key.kind for i in items],
                [i.key.st_id for i in items],
                [dumps(i.actual) for i in items],
                [i.was_read for i in items],
                priority,
                [s.value for s in from_states],
                reason,
            )
            if rows:
                await conn.execute(Q["notify"], self.channel, "requeue")
        self._emit([Transition(RecordKey(r["kind"], r["st_id"]), r["from_state"], "pending", reason)
                    for r in rows])
        return [RecordKey(r["kind"], r["st_id"]) for r in rows]

    async def raise_priority(self, keys: Sequence[RecordKey], priority: int) -> None:
        """Pending records jump the queue (and skip any backoff) for export gating."""
        kinds, ids = keys_of(keys)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["raise_priority"], self.tenant_id, kinds, ids, priority)
            await conn.execute(Q["notify"], self.channel, "priority")

    # ---- reads ----------------------------------------------------------------------------------

    async def get(self, key: RecordKey) -> Record | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(Q["get_record"], self.tenant_id, key.kind, key.st_id)
        return None if row is None else Record.from_row(row)

    async def get_many(self, keys: Sequence[RecordKey]) -> dict[RecordKey, Record]:
        kinds, ids = keys_of(keys)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["get_records"], self.tenant_id, kinds, ids)
        records = (Record.from_row(r) for r in rows)
        return {r.key: r for r in records}

    async def projects(self, st_ids: Sequence[int]) -> dict[int, Record]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["get_projects_by_st_ids"], self.tenant_id, list(st_ids))
        return {r["st_id"]: Record.from_row(r) for r in rows}

    async def records_after(self, after: tuple[str, int], limit: int) -> list[Record]:
        """Every tracked record, a page at a time in key order (`after`: the last key of the previous page)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["records_after"], self.tenant_id, after[0], after[1], limit)
        return [Record.from_row(r) for r in rows]

    async def jobs_of_projects(self, project_ids: Sequence[int]) -> list[Record]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["jobs_of_projects"], self.tenant_id, list(project_ids))
        return [Record.from_row(r) for r in rows]

    async def history(self, key: RecordKey, limit: int = 100) -> list[HistoryEntry]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["record_history"], self.tenant_id, key.kind, key.st_id, limit)
        return [
            HistoryEntry(r["at"], r["from_state"], r["to_state"], r["reason"],
                         RecordError.from_json(r["error"]))
            for r in rows
        ]

    async def list_records(
        self, *, state: str | None = None, kind: str | None = None, limit: int = 100,
        after: tuple[datetime, str, int] | None = None,
    ) -> list[Record]:
        """Records, newest change first; `after` is the (updated_at, kind, st_id) of the last one seen."""
        at, akind, aid = after if after else (None, None, None)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["list_records"], self.tenant_id, state, kind, at, akind, aid, limit)
        return [Record.from_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Records per state (every state present, zeros included)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["state_counts"], self.tenant_id)
        out = {s.value: 0 for s in State if s is not State.NEW}
        out.update({r["state"]: int(r["n"]) for r in rows})
        return out

    async def oldest_pending(self) -> datetime | None:
        async with self.pool.acquire() as conn:
            value: datetime | None = await conn.fetchval(Q["oldest_pending"], self.tenant_id)
        return value

    async def next_due(self) -> datetime | None:
        async with self.pool.acquire() as conn:
            value: datetime | None = await conn.fetchval(Q["next_due"], self.tenant_id)
        return value

    async def recent_failures(self, limit: int = 10) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["recent_failures"], self.tenant_id, limit)
        return [
            {"kind": r["kind"], "id": r["st_id"],
             "error": RecordError.from_json(r["last_error"]),
             "at": r["state_changed_at"]}
            for r in rows
        ]

    async def prune_history(self, keep_days: int) -> int:
        async with self.pool.acquire() as conn:
            status = await conn.execute(Q["prune_history"], self.tenant_id, keep_days)
        return int(status.split()[-1])
