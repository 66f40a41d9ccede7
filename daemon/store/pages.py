"""The queue page's reads (daemon.http.pages): the queue with its filters and search, the chart's figures and
the list of reconciliation runs. `Store.pages` holds one, on the store's pool; each statement walks an
index (bench/ui.py checks the plans).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from daemon.store.queries import queries
from daemon.store.reconcile_rows import Finding, RunRecord
from daemon.store.rows import Record

Q = queries()


class PagesStore:
    """SQL of the pages for one tenant (`Store.pages`)."""

    def __init__(self, pool: asyncpg.Pool, tenant_id: int) -> None:
        self.pool = pool
        self.tenant_id = tenant_id

    async def queue_page(self, *, state: str | None, kind: str | None, search: str | None,
                         after: tuple[datetime, str, int] | None, limit: int) -> list[Record]:
        """Records newest change first, filtered, after the cursor (updated_at, kind, st_id) of a page."""
        at, after_kind, after_id = after if after is not None else (None, None, None)
        args = (self.tenant_id, kind, at, after_kind, after_id)
        async with self.pool.acquire() as conn:
            if search:
                rows = await conn.fetch(Q["queue_search"], *args, search, state, limit)
            elif state:
                rows = await conn.fetch(Q["queue_in_state"], *args, state, limit)
            else:
                rows = await conn.fetch(Q["queue_page"], *args, limit)
        return [Record.from_row(r) for r in rows]

    async def outcomes_per_hour(self, since: datetime) -> dict[tuple[datetime, str], int]:
        """(UTC hour start, synced|failed) → how many records got there in that hour, since `since`."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["outcomes_per_hour"], self.tenant_id, since)
        return {(r["hour"], r["to_state"]): int(r["n"]) for r in rows}

    async def reconcile_runs(self, *, before: int | None, limit: int) -> list[RunRecord]:
        """Runs newest first, older than run `before` when given."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["reconcile_runs"], self.tenant_id, before, limit)
        return [RunRecord.from_row(r) for r in rows]

    async def run_exceptions_page(self, run_id: int, *, after: int, limit: int) -> list[tuple[int, Finding]]:
        """(seq, exception) of a run in stored order, after the exception numbered `after`."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["run_exceptions_page"], run_id, after, limit)
        return [(int(r["seq"]), Finding.from_row(r)) for r in rows]
