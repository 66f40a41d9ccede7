"""Storing what ServiceTitan says: a page of jobs or projects (and the feed cursor after it) in one
transaction, each row decided by the state machine; the feed cursors and the activation time.
`daemon.store.Store` inherits it, so one class still runs all SQL; it lives apart only to keep each
module short.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from daemon.store.queries import queries
from daemon.store.rows import (
    Record,
    RecordError,
    RecordKey,
    RecordUpsert,
    TenantSettingsState,
    Transition,
    UpsertResult,
    error_json,
)
from statemachine import State, next_state
from statemachine.coalesce import Action, Stored, on_facts
from statemachine.identity import keep_identity

Q = queries()


def keys_of(keys: Iterable[RecordKey]) -> tuple[list[str], list[int]]:
    keys = list(keys)
    return [k.kind for k in keys], [k.st_id for k in keys]


# PostgreSQL text holds neither NUL nor a lone surrogate (not encodable as UTF-8); ServiceTitan's JSON may
# carry both. One such name must not make a whole feed page unstorable (the feed would stop there).
_NOT_STORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str | None) -> str | None:
    """ServiceTitan text as PostgreSQL can keep it; what goes is what the naming rules remove anyway."""
    return None if text is None else _NOT_STORABLE.sub("", text)


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


class FactsStore:
    """SQL of ServiceTitan facts for one tenant."""

    pool: asyncpg.Pool
    tenant_id: int
    channel: str
    redact: Callable[[Any], Any]

    def _emit(self, transitions: Sequence[Transition]) -> None:
        raise NotImplementedError  # Store's: it calls the transition listeners

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
        kinds, ids = keys_of(by_key)
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
            [storable(r.number) for r in rows],
            [storable(r.name) for r in rows],
            [r.customer_id for r in rows],
            [storable(r.customer_name) for r in rows],
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
        error: RecordError | None = None,
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
            [dumps(self.redact(error_json(error))) for _ in entries],
        )

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
