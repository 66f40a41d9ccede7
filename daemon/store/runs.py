"""The reconciliation runs of one tenant: runs, their exceptions, the last report sent, and the lookups
a run makes of the tracked records. `Store.runs` holds one, on the store's pool.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from daemon.store.queries import queries
from daemon.store.reconcile_rows import Finding, ReportSent, RunRecord, Tracked

Q = queries()


class ReconcileRuns:
    """SQL of reconciliation runs for one tenant (`Store.runs`)."""

    def __init__(self, pool: asyncpg.Pool, tenant_id: int, redact: Callable[[Any], Any]) -> None:
        self.pool = pool
        self.tenant_id = tenant_id
        self.redact = redact  # stored errors pass the redactor, as the store's own

    async def start(
        self, trigger: str, scope: str, repair: bool, period_start: datetime | None
    ) -> RunRecord:
        """A new `running` run. Only the holder of the tenant's reconcile lock may call it: runs that
        are still `running` then belong to a process that died, and are marked failed first."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["fail_stale_reconcile_runs"], self.tenant_id,
                               "interrupted: the process running it stopped")
            created = await conn.fetchrow(Q["create_reconcile_run"], self.tenant_id, trigger, scope, repair,
                                          period_start)
            assert created is not None
            row = await conn.fetchrow(Q["get_reconcile_run"], self.tenant_id, created["id"])
        assert row is not None
        return RunRecord.from_row(row)

    async def finish(
        self, run_id: int, *, status: str, counts: dict[str, int], exceptions: int, timings: dict[str, float],
        error: str | None, summary: dict[str, Any], findings: Sequence[Finding] = (),
    ) -> datetime:
        """Store the outcome of a run and its exceptions in one transaction; returns when it finished."""
        async with self.pool.acquire() as conn, conn.transaction():
            for start in range(0, len(findings), 5000):
                chunk = findings[start : start + 5000]
                await conn.execute(
                    Q["insert_reconcile_exceptions"], run_id,
                    list(range(start + 1, start + len(chunk) + 1)),
                    [f.category.value for f in chunk], [f.kind for f in chunk], [f.st_id for f in chunk],
                    [f.st_number for f in chunk], [f.st_name for f in chunk],
                    [f.intacct_project_id for f in chunk], [f.intacct_name for f in chunk],
                    [f.detail for f in chunk], [f.action for f in chunk], [f.since for f in chunk],
                    [f.needs_attention for f in chunk],
                )
            finished: datetime = await conn.fetchval(
                Q["finish_reconcile_run"], self.tenant_id, run_id, status, json.dumps(counts), exceptions,
                json.dumps(timings), self.redact(error), json.dumps(summary, ensure_ascii=False, default=str),
            )
        return finished

    async def set_report(self, run_id: int, sent_at: datetime | None, error: str | None) -> None:
        """Whether (and when) the run's report was mailed, or why not."""
        async with self.pool.acquire() as conn:
            await conn.execute(Q["set_reconcile_report"], self.tenant_id, run_id, sent_at, self.redact(error))

    async def report_sent(self) -> ReportSent | None:
        """What the last emailed report listed, if one was ever sent."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(Q["get_report_state"], self.tenant_id)
        return None if row is None else ReportSent(row["fingerprint"], row["exceptions"], row["run_id"],
                                                   row["sent_at"], row["digest_on"])

    async def save_report_sent(self, sent: ReportSent) -> None:
        """Remember a report that was sent (a digest day of None keeps the last one)."""
        async with self.pool.acquire() as conn:
            await conn.execute(Q["save_report_state"], self.tenant_id, sent.fingerprint, sent.exceptions,
                               sent.run_id, sent.sent_at, sent.digest_on)

    async def latest(self) -> RunRecord | None:
        """The last run that ended (done or failed)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(Q["latest_reconcile_run"], self.tenant_id)
        return None if row is None else RunRecord.from_row(row)

    async def newest(self) -> RunRecord | None:
        """The last run started, running ones included."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(Q["newest_reconcile_run"], self.tenant_id)
        return None if row is None else RunRecord.from_row(row)

    async def get(self, run_id: int) -> RunRecord | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(Q["get_reconcile_run"], self.tenant_id, run_id)
        return None if row is None else RunRecord.from_row(row)

    async def running(self) -> int | None:
        """The id of the run in progress, if any."""
        async with self.pool.acquire() as conn:
            value: int | None = await conn.fetchval(Q["running_reconcile_run"], self.tenant_id)
        return value

    async def exceptions(self, run_id: int, limit: int) -> list[Finding]:
        """The first `limit` exceptions of a run, in the order they were stored."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["reconcile_exceptions"], run_id, limit)
        return [Finding.from_row(r) for r in rows]

    async def exception_since(
        self, run_id: int
    ) -> dict[tuple[str, str | None, int | None, str | None], datetime]:
        """When each exception of a run was first reported, by `Finding.identity`."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["reconcile_exceptions_since"], run_id)
        return {
            (r["class"], r["kind"], r["st_id"], None if r["st_id"] is not None else r["intacct_project_id"]): r["since"]
            for r in rows if r["since"] is not None
        }

    async def prune(self, keep: int) -> int:
        """Forget all but the newest `keep` runs of the tenant."""
        async with self.pool.acquire() as conn:
            status = await conn.execute(Q["prune_reconcile_runs"], self.tenant_id, keep)
        return int(status.split()[-1])

    async def tracked(self, kind: str, st_ids: Sequence[int]) -> dict[int, Tracked]:
        """The tracked records among these ST ids of one kind, as a reconciliation needs them."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["reconcile_tracked"], self.tenant_id, kind, list(st_ids))
        return {r["st_id"]: Tracked.from_row(r) for r in rows}

    async def tracked_intacct_ids(self, project_ids: Sequence[str]) -> set[str]:
        """Which of these Intacct PROJECTIDs belong to a tracked record."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["tracked_intacct_ids"], self.tenant_id, list(project_ids))
        return {r["intacct_project_id"] for r in rows}
