"""The one class that runs SQL. Every transition is a compare-and-set guarded by the state machine.

Rows become frozen dataclasses (`daemon.records`) the moment they are read; SQL text lives in
`daemon/sql/queries.sql`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from daemon.store.pages import PagesStore
from daemon.store.queries import queries
from daemon.store.rows import (
    Finished,
    HistoryEntry,
    Record,
    RecordKey,
    RecordUpsert,
    Requeue,
    Synced,
    TenantSettingsState,
    Transition,
    UpsertResult,
)
from daemon.store.runs import ReconcileRunsStore
from statemachine import State, Trigger, next_state, source_values
from statemachine.coalesce import Action, Stored, on_facts
from statemachine.identity import keep_identity
from statemachine.order import PARENT_ERROR_CLASS

Q = queries()


def notify_channel(tenant_id: int) -> str:
    """The LISTEN/NOTIFY channel that wakes this tenant's workers."""
    return f"st_intacct_sync_{tenant_id}"


def _keys(keys: Iterable[RecordKey]) -> tuple[list[str], list[int]]:
    keys = list(keys)
    return [k.kind for k in keys], [k.st_id for k in keys]


# PostgreSQL text holds neither NUL nor a lone surrogate (not encodable as UTF-8); ServiceTitan's JSON may
# carry both. One such name must not make a whole feed page unstorable (the feed would stop there).
_NOT_STORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(text: str | None) -> str | None:
    """ServiceTitan text as PostgreSQL can keep it; what goes is what the naming rules remove anyway."""
    return None if text is None else _NOT_STORABLE.sub("", text)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


class Store(ReconcileRunsStore, PagesStore):
    """Persistence of one tenant's records, history, cursors, settings and reconciliation runs."""

    def __init__(self, pool: asyncpg.Pool, tenant_id: int, redact: Callable[[Any], Any] | None = None) -> None:
        self.pool = pool
        self.tenant_id = tenant_id
        # Errors are stored (and later served) through the redactor: a remote error may quote a secret.
        self.redact: Callable[[Any], Any] = redact or (lambda value: value)
        self.channel = notify_channel(tenant_id)
        self._listeners: list[Callable[[Sequence[Transition]], None]] = []

    def on_transitions(self, listener: Callable[[Sequence[Transition]], None]) -> None:
        """Call `listener` with every batch of transitions this store commits."""
        self._listeners.append(listener)

    def _emit(self, transitions: Sequence[Transition]) -> None:
        if transitions:
            for listener in self._listeners:
                listener(transitions)

    # ---- ServiceTitan facts -------------------------------------------------------------------

    async def upsert(
        self,
        rows: Sequence[RecordUpsert],
        *,
        cursor: tuple[str, str] | None = None,
        only_tracked: Sequence[RecordKey] = (),
        jobs_of: Sequence[int] = (),
        derive_jobs: Callable[[Sequence[Record]], Sequence[RecordUpsert]] | None = None,
    ) -> UpsertResult:
        """Store a page of ST facts (and the feed cursor after it) in one transaction.

        Keys in `only_tracked` are updated if already stored but never inserted: the feed's rows
        from before the activation time matter only for records something else asked for. The jobs
        of the projects `jobs_of` are derived again (`derive_jobs`) and stored in the same
        transaction: a page whose cursor is stored has had its jobs refreshed too.
        """
        result = UpsertResult()
        by_key: dict[RecordKey, RecordUpsert] = {}
        for row in rows:  # a page may repeat a record: the newest modifiedOn wins
            prev = by_key.get(row.key)
            if prev is None or (row.modified_on or datetime.min.replace(tzinfo=UTC)) >= (
                prev.modified_on or datetime.min.replace(tzinfo=UTC)
            ):
                by_key[row.key] = row
        history: list[tuple[RecordKey, str | None, str, str]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            lost = await self._upsert_rows(conn, by_key, set(only_tracked), result, history)
            if lost:
                # A concurrent first insert of the same key (an ensure and a poll at once) won the
                # race: now that its row exists, this page's facts are applied to it like any update,
                # so the newest ServiceTitan data is kept whichever insert came first.
                await self._upsert_rows(conn, {k: by_key[k] for k in lost}, set(), result, history)
            if jobs_of and derive_jobs is not None:
                jobs = [Record.from_row(r) for r in await conn.fetch(Q["jobs_of_projects"], self.tenant_id,
                                                                     list(jobs_of))]
                derived = {row.key: row for row in derive_jobs(jobs)}
                if derived:
                    await self._upsert_rows(conn, derived, set(), result, history)
            await self._history(conn, history)
            if cursor is not None:
                await conn.execute(Q["set_cursor"], self.tenant_id, cursor[0], cursor[1])
            if result.enqueued:
                await conn.execute(Q["notify"], self.channel, "enqueue")
        self._emit([Transition(key, old, new, reason) for key, old, new, reason in history])
        return result

    async def _upsert_rows(
        self,
        conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
        by_key: dict[RecordKey, RecordUpsert],
        skip_insert: set[RecordKey],
        result: UpsertResult,
        history: list[tuple[RecordKey, str | None, str, str]],
    ) -> list[RecordKey]:
        """Insert or update these rows (locked, decided by the state machine); returns the inserts lost
        to a concurrent insert of the same key."""
        kinds, ids = _keys(by_key)
        locked = {RecordKey(r["kind"], r["st_id"]): r
                  for r in await conn.fetch(Q["lock_records"], self.tenant_id, kinds, ids)}
        inserts: list[RecordUpsert] = []
        updates: list[tuple[RecordUpsert, State]] = []
        for key, row in by_key.items():
            found = locked.get(key)
            if found is not None and found["intacct_confirmed"]:
                # Intacct has this record under its stored PROJECTID: that stays, whatever the template
                # or ServiceTitan's number now render.
                row = replace(row, desired=keep_identity(row.desired, found["intacct_project_id"]))
            stored = None if found is None else Stored(
                State(found["state"]), found["desired_hash"], found["synced_hash"], found["st_modified_on"])
            decision = on_facts(stored, row.desired.digest(), row.modified_on)
            if decision.action is Action.INSERT:
                if key in skip_insert:
                    result.ignored.append(key)
                else:
                    inserts.append(row)
            elif decision.action is Action.UPDATE:
                assert stored is not None  # only stored records are updated
                if decision.trigger is not None:
                    next_state(stored.state, decision.trigger)  # refuses a move the table forbids
                    history.append((key, stored.state.value, decision.state.value, decision.reason))
                    result.requeued.append(key)
                else:
                    result.updated.append(key)
                updates.append((row, decision.state))
            else:
                result.ignored.append(key)
        lost: list[RecordKey] = []
        if inserts:
            done = {RecordKey(r["kind"], r["st_id"])
                    for r in await conn.fetch(Q["insert_records"], self.tenant_id, *self._columns(inserts))}
            for row in inserts:
                if row.key in done:
                    result.inserted.append(row.key)
                    history.append((row.key, None, State.PENDING.value, "new in ServiceTitan"))
                else:
                    lost.append(row.key)
        if updates:
            await conn.execute(
                Q["update_records"],
                self.tenant_id,
                *self._columns([u for u, _ in updates]),
                [s.value for _, s in updates],
            )
        return lost

    @staticmethod
    def _columns(rows: Sequence[RecordUpsert]) -> list[list[Any]]:
        return [
            [r.kind for r in rows],
            [r.st_id for r in rows],
            [_storable(r.number) for r in rows],
            [_storable(r.name) for r in rows],
            [r.customer_id for r in rows],
            [_storable(r.customer_name) for r in rows],
            [r.project_id for r in rows],
            [r.active for r in rows],
            [r.created_on for r in rows],
            [r.modified_on for r in rows],
            [json.dumps(r.desired.fields(), ensure_ascii=False) for r in rows],
            [r.desired.digest() for r in rows],
            [r.desired.project_id for r in rows],
            [r.desired.parent_id for r in rows],
            [r.priority for r in rows],
        ]

    async def _history(
        self,
        conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
        entries: Sequence[tuple[RecordKey, str | None, str, str]],
        error: dict[str, Any] | None = None,
    ) -> None:
        if not entries:
            return
        await conn.execute(
            Q["insert_history"],
            self.tenant_id,
            [e[0].kind for e in entries],
            [e[0].st_id for e in entries],
            [e[1] for e in entries],
            [e[2] for e in entries],
            [e[3] for e in entries],
            [_dumps(self.redact(error)) for _ in entries],
        )

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
        kinds, ids = _keys(keys) if keys is not None else (None, None)
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
                [_dumps(self.redact(r.error)) for r in results],
                [r.delay_s for r in results],
                [1 if r.refund_attempt else 0 for r in results],
                [r.verify_first for r in results],
                [r.sent_hash for r in results],
                [claims.get(r.key) for r in results],
                PARENT_ERROR_CLASS,
            )
        self._emit([
            Transition(RecordKey(r["kind"], r["st_id"]), "syncing", r["state"], r["reason"],
                       None if r["error"] is None else json.loads(r["error"]))
            for r in rows
        ])
        return {RecordKey(r["kind"], r["st_id"]): State(r["state"]) for r in rows}

    async def release(self, owner: str, records: Sequence[Record], *, verify_first: bool) -> int:
        """Give claims back unused (graceful stop); `verify_first` when a request may have landed."""
        done = await self.finish(owner, [
            Finished(r.key, State.PENDING, "released at shutdown", r.desired_hash,
                     refund_attempt=not verify_first, verify_first=verify_first)
            for r in records
        ], {r.key: r.claim_id for r in records})
        return len(done)

    # ---- connection state -----------------------------------------------------------------------

    async def block_pending(self, error: dict[str, Any], reason: str) -> int:
        """pending → blocked-by-connection for the whole tenant."""
        assert State.PENDING.value in source_values(Trigger.CONNECTION_LOST)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["block_pending"], self.tenant_id, _dumps(self.redact(error)), reason)
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
        kinds, ids = _keys(keys)
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
                [_dumps(i.actual) for i in items],
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
        kinds, ids = _keys(keys)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["raise_priority"], self.tenant_id, kinds, ids, priority)
            await conn.execute(Q["notify"], self.channel, "priority")

    # ---- reads ----------------------------------------------------------------------------------

    async def get(self, key: RecordKey) -> Record | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(Q["get_record"], self.tenant_id, key.kind, key.st_id)
        return None if row is None else Record.from_row(row)

    async def get_many(self, keys: Sequence[RecordKey]) -> dict[RecordKey, Record]:
        kinds, ids = _keys(keys)
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
                         None if r["error"] is None else json.loads(r["error"]))
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
             "error": None if r["last_error"] is None else json.loads(r["last_error"]),
             "at": r["state_changed_at"]}
            for r in rows
        ]

    # ---- feed cursors and the activation time ---------------------------------------------------

    async def get_cursor(self, feed: str) -> str | None:
        async with self.pool.acquire() as conn:
            value: str | None = await conn.fetchval(Q["get_cursor"], self.tenant_id, feed)
        return value

    async def last_poll_at(self) -> datetime | None:
        """When both change feeds were last read to their end."""
        async with self.pool.acquire() as conn:
            value: datetime | None = await conn.fetchval(Q["last_poll"], self.tenant_id)
        return value

    async def set_cursor(self, feed: str, continue_from: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(Q["set_cursor"], self.tenant_id, feed, continue_from)

    async def apply_auto_sync(self, enabled: bool, now: datetime) -> TenantSettingsState:
        """Record whether automatic sync is on; turning it on stores a new activation time.

        A new activation also drops the feed cursors: changes made while it was off are older than
        the activation time and must not be synced automatically, so there is nothing to replay.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["insert_tenant_settings"], self.tenant_id, enabled, now if enabled else None)
            row = await conn.fetchrow(Q["get_tenant_settings"], self.tenant_id)
            assert row is not None  # inserted just above when missing
            on, activated = bool(row["auto_sync_on"]), row["auto_sync_activated_at"]
            if enabled and (not on or activated is None):
                activated = now
                await conn.execute(Q["update_tenant_settings"], self.tenant_id, True, activated)
                await conn.execute(Q["clear_cursors"], self.tenant_id)
            elif not enabled and on:
                await conn.execute(Q["update_tenant_settings"], self.tenant_id, False, activated)
            return TenantSettingsState(enabled, activated)

    async def derived_with(self) -> str | None:
        """The derivation key the stored desired fields follow (None: never recorded)."""
        async with self.pool.acquire() as conn:
            value: str | None = await conn.fetchval(Q["get_derived_with"], self.tenant_id)
        return value

    async def set_derived_with(self, key: str) -> None:
        """Record the derivation key (the tenant's settings row exists once auto sync was applied)."""
        async with self.pool.acquire() as conn:
            await conn.execute(Q["set_derived_with"], self.tenant_id, key)

    async def tenant_settings(self) -> TenantSettingsState | None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["get_tenant_settings"], self.tenant_id)
        if row is None:
            return None
        return TenantSettingsState(bool(row["auto_sync_on"]), row["auto_sync_activated_at"])

    async def prune_history(self, keep_days: int) -> int:
        async with self.pool.acquire() as conn:
            status = await conn.execute(Q["prune_history"], self.tenant_id, keep_days)
        return int(status.split()[-1])
