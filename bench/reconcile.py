"""Benchmark: one reconciliation of 100,000 ServiceTitan records against 100,000 Intacct projects (§13).

Both simulators run as subprocesses with 50 ms added to every ServiceTitan list page and to every
Intacct request; ServiceTitan gets 95,000 jobs under 5,000 projects through its bulk control API,
Intacct the matching projects with 2 % drift spread over the classes (missing, renamed, re-parented,
re-linked, orphans); the local store is seeded directly (upsert, claim, mark synced, as
bench/store.py does) so that every record is tracked and synced. Then the real
`st-intacct-sync reconcile --no-email` runs as a subprocess, and the benchmark prints its wall time,
the bound (pages read × page latency), their ratio, the peak RSS of the reconcile process and
whether every injected drift was found (and nothing else).

    python bench/reconcile.py [--records 100000] [--latency 0.05] [--drift 0.02] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psutil
from common import REPO, Stack, bench_stack

from daemon.store.migrations import migrate
from daemon.store.rows import RecordUpsert, Synced
from daemon.store.store import Store
from statemachine import FieldMapping, JobFacts, ProjectFacts, Settings, desired_for_job, desired_for_project
from tests.acceptance.harness import TENANT

TARGET_S, TARGET_RSS_MB = 60.0, 250.0
ST_PAGE, INTACCT_PAGE = 5000, 2000
SETTINGS = Settings(enable_customer_project_linkage=True)
MAPPING = FieldMapping(customer_id="C{customer_id}")
# Shares of the injected drift per class.
SHARES = {"missing_in_intacct": 0.25, "name_mismatch": 0.20, "parent_mismatch": 0.20, "customer_mismatch": 0.20,
          "orphan_in_intacct": 0.15}


def st_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


class World:
    """The seeded records, their desired Intacct fields and the injected drift."""

    def __init__(self, records: int, drift: float, seed: int) -> None:
        rng = random.Random(seed)
        self.n_projects = max(1, records // 20)
        self.n_jobs = records - self.n_projects
        self.n_customers = max(1, records // 50)
        self.created = datetime.now(UTC) - timedelta(days=1)
        self.customers = [10001 + i for i in range(self.n_customers)]
        self.projects: list[tuple[int, ProjectFacts]] = []
        for i in range(self.n_projects):
            cid = self.customers[i % self.n_customers]
            self.projects.append((50001 + i, ProjectFacts(50001 + i, str(20001 + i), f"Riverside Office {i + 1}",
                                                          cid, f"Customer {cid}")))
        self.jobs: list[tuple[int, JobFacts]] = []
        for j in range(self.n_jobs):
            pid, parent = self.projects[j % self.n_projects]
            self.jobs.append((100001 + j, JobFacts(100001 + j, str(300001 + j), pid, parent.customer_id,
                                                   parent.customer_name)))
        self.parents = dict(self.projects)
        total = round(records * drift)
        counts = {k: round(total * share) for k, share in SHARES.items()}
        picked = rng.sample(range(self.n_jobs), sum(v for k, v in counts.items() if k != "orphan_in_intacct"))
        self.expected: dict[str, set[Any]] = defaultdict(set)
        cursor = 0
        self.drift: dict[int, str] = {}  # job index -> class
        for name in ("missing_in_intacct", "name_mismatch", "parent_mismatch", "customer_mismatch"):
            for index in picked[cursor : cursor + counts[name]]:
                self.drift[index] = name
            cursor += counts[name]
        # A tenth of the renames hit parent projects instead of jobs.
        renamed_projects = rng.sample(range(self.n_projects), min(self.n_projects, counts["name_mismatch"] // 10))
        self.renamed_projects = set(renamed_projects)
        moved_jobs = [i for i, c in self.drift.items() if c == "name_mismatch"][: len(renamed_projects)]
        for index in moved_jobs:
            del self.drift[index]
        for index, name in self.drift.items():
            self.expected[name].add(("job", self.jobs[index][0]))
        for index in renamed_projects:
            self.expected["name_mismatch"].add(("project", self.projects[index][0]))
        self.orphans = [f"J-9{i:06d}" for i in range(counts["orphan_in_intacct"])]
        self.expected["orphan_in_intacct"] = set(self.orphans)

    def servicetitan_bulk(self) -> dict[str, Any]:
        when = st_time(self.created)
        return {
            "customers": [{"id": c, "name": f"Customer {c}", "createdOn": when} for c in self.customers],
            "projects": [{"id": pid, "number": f.number, "name": f.name, "customerId": f.customer_id,
                          "createdOn": when, "modifiedOn": when} for pid, f in self.projects],
            "jobs": [{"id": jid, "jobNumber": f.number, "projectId": f.project_id, "customerId": f.customer_id,
                      "createdOn": when, "modifiedOn": when} for jid, f in self.jobs],
        }

    def intacct_projects(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        project_ids = [desired_for_project(f, SETTINGS, MAPPING).project_id for _, f in self.projects]
        for index, (_, f) in enumerate(self.projects):
            fields = _fields(desired_for_project(f, SETTINGS, MAPPING))
            if index in self.renamed_projects:
                fields["NAME"] = "Renamed in Intacct " + fields["NAME"]
            out.append(fields)
        for index, (_, f) in enumerate(self.jobs):
            drift = self.drift.get(index)
            if drift == "missing_in_intacct":
                continue
            fields = _fields(desired_for_job(f, self.parents[f.project_id or 0], SETTINGS, MAPPING))
            if drift == "name_mismatch":
                fields["NAME"] = "Renamed by hand " + fields["NAME"]
            elif drift == "parent_mismatch":
                fields["PARENTID"] = project_ids[(index + 1) % len(project_ids)] if len(project_ids) > 1 else None
            elif drift == "customer_mismatch":
                other = self.customers[(self.customers.index(f.customer_id or 0) + 1) % len(self.customers)]
                fields["CUSTOMERID"] = f"C{other}" if len(self.customers) > 1 else None
            out.append(fields)
        out += [{"PROJECTID": pid, "NAME": "Made by hand", "PROJECTCATEGORY": "Contract"} for pid in self.orphans]
        return out

    def upserts(self) -> tuple[list[RecordUpsert], list[RecordUpsert]]:
        projects = [RecordUpsert("project", pid, f.number, f.name, f.customer_id, f.customer_name, None, True,
                                 self.created, self.created, desired_for_project(f, SETTINGS, MAPPING))
                    for pid, f in self.projects]
        jobs = [RecordUpsert("job", jid, f.number, None, f.customer_id, f.customer_name, f.project_id, True,
                             self.created, self.created,
                             desired_for_job(f, self.parents[f.project_id or 0], SETTINGS, MAPPING))
                for jid, f in self.jobs]
        return projects, jobs


def _fields(desired: Any) -> dict[str, Any]:
    return {k: v for k, v in desired.fields().items() if v is not None and k != "STATUS"}


async def seed_store(dsn: str, world: World) -> None:
    """Every record tracked and synced, as if the daemon had synced them all."""
    async with asyncpg.create_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            await migrate(conn)
        store = Store(pool, TENANT)
        await store.apply_auto_sync(True, world.created - timedelta(days=1))
        projects, jobs = world.upserts()
        for rows in (projects, jobs):
            for start in range(0, len(rows), 5000):
                await store.upsert(rows[start : start + 5000])
            while claimed := await store.claim_batch("seed", 5000, timedelta(minutes=10)):
                await store.mark_synced("seed", [Synced(r.key, r.desired_hash, r.desired, None) for r in claimed],
                    {r.key: r.claim_id for r in claimed})
        counts = await store.counts()
        assert counts["synced"] == len(projects) + len(jobs), counts
        async with pool.acquire() as conn:
            # A database in service has statistics; one filled a second ago has none yet, and plans
            # for "6 rows" that hash the whole table.
            await conn.execute("ANALYZE")


async def seed_simulators(stack: Stack, world: World) -> int:
    started = time.monotonic()
    await stack.st.bulk(world.servicetitan_bulk())
    await stack.ia.call("POST", "/_sim/customers", {"ids": [f"C{c}" for c in world.customers]})
    rows = world.intacct_projects()
    for start in range(0, len(rows), 5000):
        await stack.ia.call("POST", "/_sim/projects", {"projects": rows[start : start + 5000]})
    print(f"seeded the simulators in {time.monotonic() - started:.1f} s: ServiceTitan {world.n_projects:,} projects "
          f"and {world.n_jobs:,} jobs, Intacct {len(rows):,} projects", flush=True)
    return len(rows)


def _high_water_kb(pid: int) -> int:
    """The process's own peak RSS (VmHWM), in kB; 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_reconcile(config_path: str, log_path: str) -> tuple[int, float, float]:
    """The command as a subprocess: exit code, wall seconds, peak RSS in MB.

    The peak is the child's own high-water mark (VmHWM, read until it exits) and sampled RSS, not
    getrusage(RUSAGE_CHILDREN): Linux carries the parent's peak over fork and exec into ru_maxrss,
    so a child of this benchmark (which holds the seed data) would inherit the benchmark's peak.
    """
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "--config", config_path, "reconcile",
                                 "--no-email"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        peak_kb = 0
        handle = psutil.Process(proc.pid)
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak_kb = max(peak_kb, handle.memory_info().rss // 1024, _high_water_kb(proc.pid))
            time.sleep(0.01)
    wall = time.monotonic() - started
    return proc.returncode, wall, peak_kb / 1024


async def found_drift(dsn: str) -> tuple[dict[str, set[Any]], dict[str, Any]]:
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
        store = Store(pool, TENANT)
        run = await store.runs.latest()
        assert run is not None, "no reconciliation was stored"
        found: dict[str, set[Any]] = defaultdict(set)
        for f in await store.runs.exceptions(run.id, 10**7):
            found[f.category.value].add(f.intacct_project_id if f.st_id is None else (f.kind, f.st_id))
        return found, run.public()


async def main(records: int, latency: float, drift: float, seed: int) -> int:
    world = World(records, drift, seed)
    async with bench_stack(intacct_args=[]) as stack:
        intacct_total = await seed_simulators(stack, world)
        await seed_store(stack.dsn, world)
        await stack.st.faults(page_latency=latency)
        await stack.ia.faults(latency=latency)
        config = stack.config(settings={"enable_customer_project_linkage": True},
                              mapping={"customer_id": "C{customer_id}"},
                              intacct={"request_timeout": "60s"}, logging={"format": "json", "level": "warning"})
        path = stack.write_config(config, "reconcile.yaml")
        print(f"store seeded: {records:,} records tracked and synced; running st-intacct-sync reconcile", flush=True)
        code, wall, rss = run_reconcile(str(path), str(stack.tmp / "reconcile.log"))
        output = (stack.tmp / "reconcile.log").read_text(errors="replace")
        found, run = await found_drift(stack.dsn)
    pages = (math.ceil(world.n_projects / ST_PAGE) + math.ceil(world.n_jobs / ST_PAGE)
             + math.ceil(intacct_total / INTACCT_PAGE))
    bound = pages * latency
    print(output.strip().splitlines()[-1] if output.strip() else "(no output)")
    print(f"\nreconcile: {records:,} ServiceTitan records vs {intacct_total:,} Intacct projects, "
          f"{latency * 1000:.0f} ms page latency; exit code {code}")
    print(f"  wall time   {wall:6.1f} s   (target ≤ {TARGET_S:.0f} s)   run's own timings: {run['timings']}")
    print(f"  bound       {bound:6.1f} s   ({pages} pages × {latency * 1000:.0f} ms)")
    print(f"  ratio       {wall / bound:6.2f}     (wall time / bound)")
    print(f"  peak RSS    {rss:6.1f} MB  (target ≤ {TARGET_RSS_MB:.0f} MB)")
    every = True
    for name in SHARES:
        expected, got = world.expected[name], found.get(name, set())
        missed, extra = expected - got, got - expected
        every &= not missed and not extra
        print(f"  {name:<20} injected {len(expected):5,}  found {len(got):5,}  missed {len(missed):3}  "
              f"extra {len(extra):3}")
    others = {k: len(v) for k, v in found.items() if k not in SHARES}
    every &= not others
    print(f"  other exceptions: {others or 'none'}; counts {run['counts']}")
    print(f"  every drift found: {'yes' if every else 'NO'}")
    ok = code == 3 and every and wall <= TARGET_S and rss <= TARGET_RSS_MB
    if code not in (0, 3):
        print(output[-3000:])
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="ServiceTitan records (jobs + projects)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per page and per Intacct request")
    parser.add_argument("--drift", type=float, default=0.02, help="share of records with injected drift")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.records, args.latency, args.drift, args.seed)))
