"""Benchmark: claim → synced transitions per second in PostgreSQL alone.

Creates a scratch database, enqueues N jobs under a few projects, then lets W concurrent workers
claim batches (FOR UPDATE SKIP LOCKED, leases, history rows) and mark them synced, exactly as the
daemon's workers do minus the Intacct round trip. Prints records/s and the ratio to the target.

    python bench/store.py [--records 20000] [--workers 4] [--batch 50] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.store.migrations import migrate  # noqa: E402
from daemon.store.rows import RecordUpsert, Synced  # noqa: E402
from daemon.store.store import Store  # noqa: E402
from statemachine import FieldMapping, JobFacts, ProjectFacts, Settings, desired_for_job, desired_for_project  # noqa: E402

TARGET = 5000.0
TENANT = 1


def rows(n_jobs: int, n_projects: int) -> tuple[list[RecordUpsert], list[RecordUpsert]]:
    now = datetime.now(UTC)
    settings, mapping = Settings(), FieldMapping()
    projects = []
    facts = {}
    for p in range(1, n_projects + 1):
        f = ProjectFacts(p, f"{p:05d}", f"Project {p}", 1, "Customer")
        facts[p] = f
        projects.append(RecordUpsert("project", p, f.number, f.name, 1, "Customer", None, True, now, now,
                                     desired_for_project(f, settings, mapping)))
    jobs = []
    for j in range(1, n_jobs + 1):
        p = (j % n_projects) + 1
        jf = JobFacts(j, f"{j:06d}", p, 1, "Customer")
        jobs.append(RecordUpsert("job", j, jf.number, None, 1, "Customer", p, True, now, now,
                                 desired_for_job(jf, facts[p], settings, mapping)))
    return projects, jobs


async def run(dsn: str, n_jobs: int, n_workers: int, batch: int) -> float:
    base, _, _ = dsn.rpartition("/")
    name = f"sis_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        async with asyncpg.create_pool(f"{base}/{name}", min_size=n_workers + 1, max_size=n_workers + 2) as pool:
            async with pool.acquire() as conn:
                await migrate(conn)
            store = Store(pool, TENANT)
            projects, jobs = rows(n_jobs, max(1, n_jobs // 20))
            await store.upsert(projects)
            # The projects are synced beforehand: the figure is about the steady state of jobs.
            while claimed := await store.claim_batch("seed", 500, timedelta(minutes=5)):
                await store.mark_synced("seed", [Synced(r.key, r.desired_hash, r.desired, None) for r in claimed],
                    {r.key: r.claim_id for r in claimed})
            for i in range(0, len(jobs), 1000):
                await store.upsert(jobs[i : i + 1000])
            print(f"enqueued {n_jobs} jobs; {n_workers} workers, batches of {batch}", flush=True)

            done = 0

            async def worker(owner: str) -> None:
                nonlocal done
                while claimed := await store.claim_batch(owner, batch, timedelta(seconds=60)):
                    landed = await store.mark_synced(
                        owner, [Synced(r.key, r.desired_hash, r.desired, r.st_id) for r in claimed],
                        {r.key: r.claim_id for r in claimed},
                    )
                    done += len(landed)

            started = time.perf_counter()
            await asyncio.gather(*(worker(f"w{i}") for i in range(n_workers)))
            elapsed = time.perf_counter() - started
            counts = await store.counts()
            if counts["synced"] != n_jobs + len(projects) or done != n_jobs:
                raise SystemExit(f"lost records: {counts}, done={done}")
            return n_jobs / elapsed
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    rate = asyncio.run(run(args.dsn, args.records, args.workers, args.batch))
    print(f"store: {rate:,.0f} claim→synced transitions/s "
          f"(target {TARGET:,.0f}/s, ratio {rate / TARGET:.2f})")


if __name__ == "__main__":
    main()
