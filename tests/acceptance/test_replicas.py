"""Several replicas on one database: shared work, one leader, failover.

Two `st-intacct-sync run` subprocesses share one PostgreSQL database and differ only in `http.listen`.
What they did is read from the simulators and, for the claims, straight from `record_history`.
The leadership primitive (`daemon.leader.lead`) is also driven in-process against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from daemon.leader import lead
from daemon.store.locks import lock_key
from tests.acceptance.harness import TENANT, Daemon, Stack, free_port, wait_until

pytestmark = pytest.mark.timeout(180)

LEASE_S = 4.0
POLL_S = 0.5


def replica_config(stack: Stack, **overrides: Any) -> dict[str, Any]:
    """Short leases and polls so that takeovers and rates show within seconds."""
    sections: dict[str, Any] = {
        "sync": {"lease": f"{LEASE_S}s", "backoff_initial": "0.2s", "backoff_max": "2s"},
        "servicetitan": {"poll_interval": f"{POLL_S}s"},
        "intacct": {"max_functions_per_request": 10},
    }
    for section, values in overrides.items():
        sections[section] = {**sections.get(section, {}), **values}
    return stack.config(**sections)


async def start_replicas(stack: Stack, config: dict[str, Any]) -> tuple[Daemon, Daemon]:
    """Two daemons with the same configuration except their HTTP address."""
    other = {**config, "http": {**config["http"], "listen": f"127.0.0.1:{free_port()}"}}
    a, b = await asyncio.gather(stack.start_daemon(config, name="replica-a"),
                                stack.start_daemon(other, name="replica-b"))
    return a, b


async def owner_of(daemon: Daemon) -> str:
    owner: str = (await daemon.status())["replica"]["owner"]
    return owner


async def leaders(*daemons: Daemon) -> list[bool]:
    return [(await d.status())["replica"]["leader"] for d in daemons]


async def one_leader(a: Daemon, b: Daemon) -> Daemon | None:
    flags = await leaders(a, b)
    return (a if flags[0] else b) if flags.count(True) == 1 else None


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@dataclass(frozen=True)
class Step:
    at: datetime
    from_state: str | None
    to_state: str
    reason: str


async def histories(dsn: str) -> dict[tuple[str, int], list[Step]]:
    """Every record's transitions in commit order."""
    rows = await fetch(dsn, "SELECT kind, st_id, at, from_state, to_state, reason FROM record_history "
                            "WHERE tenant_id = $1 ORDER BY id", TENANT)
    out: dict[tuple[str, int], list[Step]] = defaultdict(list)
    for r in rows:
        out[(r["kind"], r["st_id"])].append(Step(r["at"], r["from_state"], r["to_state"], r["reason"]))
    return out


def claims(steps: list[Step]) -> list[tuple[str, Step, Step | None]]:
    """(owner, claim, the step that ended it) for each claim of one record; asserts none overlap.

    A claim is `pending → syncing` ("claimed by <owner>"); it lasts until the next step out of
    `syncing`. Two overlapping claims would show as a second claim before the first one ended.
    """
    out: list[tuple[str, Step, Step | None]] = []
    open_claim: tuple[str, Step] | None = None
    for prev, step in zip([None, *steps], steps, strict=False):
        if prev is not None:
            assert step.at >= prev.at, f"history out of order: {prev} then {step}"
            assert step.from_state == prev.to_state, f"broken chain: {prev} then {step}"
        if step.to_state == "syncing":
            assert open_claim is None, f"claimed by {step.reason!r} while {open_claim[0]!r} still held it"
            assert step.reason.startswith("claimed by "), step
            open_claim = (step.reason.removeprefix("claimed by "), step)
        elif step.from_state == "syncing":
            assert open_claim is not None, f"left syncing without a claim: {step}"
            out.append((*open_claim, step))
            open_claim = None
    if open_claim is not None:
        out.append((*open_claim, None))
    return out


async def make_work(stack: Stack, jobs: int, projects: int = 0) -> int:
    """`projects` projects and `jobs` jobs (most of them under the projects); returns the record count."""
    customer = await stack.st.customer("Replica & Co")
    project_ids = [(await stack.st.project(customer["id"], f"Project {i}"))["id"] for i in range(projects)]
    job_docs = [{"customerId": customer["id"], **({"projectId": project_ids[i % projects]}
                                                  if projects and i % 4 else {})} for i in range(jobs)]
    await stack.st.bulk({"jobs": job_docs})
    return jobs + projects


async def test_two_replicas_share_the_work_and_never_sync_a_record_twice(stack: Stack) -> None:
    await stack.ia.faults(latency=0.05, latency_per_function=0.002)
    a, b = await start_replicas(stack, replica_config(stack))
    owners = {await owner_of(a), await owner_of(b)}
    assert len(owners) == 2
    total = await make_work(stack, jobs=400, projects=20)

    await a.wait_queue(lambda q: q["synced"] == total, 120, f"{total} records synced")
    assert (await b.status())["queue"]["synced"] == total  # one database: both see the same queue

    # Intacct holds each PROJECTID exactly once, and was never asked to create one twice.
    listed = (await stack.ia.call("GET", "/_sim/projects"))["projects"]
    ids = [p["PROJECTID"] for p in listed]
    assert len(ids) == len(set(ids)) == total
    stats = await stack.ia.stats()
    assert stats["duplicate_create_attempts"] == 0, stats
    assert stats["functions"]["create"] == total, stats

    # Every record: created, claimed once by one of the two replicas, synced. No claim overlapped.
    work: Counter[str] = Counter()
    history = await histories(stack.dsn)
    assert len(history) == total
    for key, steps in history.items():
        assert [(s.from_state, s.to_state) for s in steps] == [
            (None, "pending"), ("pending", "syncing"), ("syncing", "synced")], (key, steps)
        [(owner, _, end)] = claims(steps)
        assert owner in owners and end is not None
        work[owner] += 1
    assert set(work) == owners, f"one replica did all the work: {dict(work)}"
    assert sum(work.values()) == total
    a.proc.stop()
    b.proc.stop()


async def test_exactly_one_replica_leads_and_polls(stack: Stack) -> None:
    a, b = await start_replicas(stack, replica_config(stack))
    leader = await wait_until(lambda: one_leader(a, b), 15, "exactly one leader")
    # It stays that way: sampled over a few seconds, always one leader, always the same.
    for _ in range(12):
        assert await one_leader(a, b) is leader
        await asyncio.sleep(0.25)

    # One poller: the change feed is read at the rate of one `poll_interval`, not two.
    async def export_requests() -> int:
        stats = await stack.st.call("GET", "/_sim/stats")
        return int(stats["requests"].get("api.export.jobs", 0))

    before, started = await export_requests(), time.monotonic()
    await asyncio.sleep(5)  # a measuring window, not a wait for something to happen
    count, elapsed = await export_requests() - before, time.monotonic() - started
    one_poller = elapsed / POLL_S
    print(json.dumps({"export_jobs_requests": count, "window_s": round(elapsed, 2),
                      "one_poller_would_make": round(one_poller, 1)}))
    assert 0.4 * one_poller <= count <= 1.3 * one_poller + 1, (count, one_poller)

    # The logs agree: only the leader ever acquired leadership, and a follower works all the same.
    follower = b if leader is a else a
    assert "leadership_acquired" in leader.proc.output()
    assert "leadership_acquired" not in follower.proc.output()
    c = await stack.st.customer("Acme")
    job = await stack.st.job(c["id"])
    await follower.wait_state("job", job["id"], "synced", timeout=20)
    assert a.proc.stop() == 0 and b.proc.stop() == 0


async def test_killing_the_leader_hands_over_within_two_leases(stack: Stack) -> None:
    await stack.ia.faults(latency=0.5)
    a, b = await start_replicas(stack, replica_config(stack))
    leader = await wait_until(lambda: one_leader(a, b), 15, "exactly one leader")
    survivor = b if leader is a else a
    dead_owner, survivor_owner = await owner_of(leader), await owner_of(survivor)
    # The idle follower is frozen while the work arrives, so that the leader surely holds claims when it
    # dies (otherwise which replica claims what is a race). It thaws the moment the leader is killed.
    survivor.proc.signal(signal.SIGSTOP)
    try:
        total = await make_work(stack, jobs=30, projects=2)

        async def leader_holds_claims() -> bool:
            rows = await fetch(stack.dsn, "SELECT count(*) AS n FROM records WHERE tenant_id = $1 "
                                          "AND state = 'syncing' AND lease_owner = $2", TENANT, dead_owner)
            return rows[0]["n"] > 0

        await wait_until(leader_holds_claims, 30, "the leader holding claims", interval=0.02)
        leader.proc.kill()  # kill -9: no drain, no lease given back, the advisory lock's session dies
        killed = time.monotonic()
    finally:
        survivor.proc.signal(signal.SIGCONT)
    leader.proc.stop()  # only closes its log: the process is gone
    held = {(r["kind"], r["st_id"]) for r in await fetch(
        stack.dsn, "SELECT kind, st_id FROM records WHERE tenant_id = $1 AND state = 'syncing' "
                   "AND lease_owner = $2", TENANT, dead_owner)}
    assert held, "the leader finished its claims before it was killed"
    c = await stack.st.customer("After the kill")
    fresh = await stack.st.job(c["id"])

    # The survivor leads (and so polls) within two leases, and a job created after the kill is synced.
    async def survivor_leads() -> bool:
        return (await survivor.status())["replica"]["leader"] is True

    await wait_until(survivor_leads, 2 * LEASE_S, "the survivor to lead")
    await survivor.wait_state("job", fresh["id"], "synced", timeout=2 * LEASE_S - (time.monotonic() - killed))
    took_over = time.monotonic() - killed
    assert took_over <= 2 * LEASE_S

    # The dead one's claims expire, go back to pending and are finished by the survivor, once.
    total += 1
    await survivor.wait_queue(lambda q: q["synced"] == total, 60, f"all {total} records synced")
    history = await histories(stack.dsn)
    for key in held:
        steps = history[key]
        record_claims = claims(steps)
        dead = [(o, s, e) for o, s, e in record_claims if o == dead_owner]
        assert len(dead) == 1 and dead[0][2] is not None and dead[0][2].reason == "lease expired", steps
        assert dead[0][2].to_state == "pending"
        assert record_claims[-1][0] == survivor_owner and steps[-1].to_state == "synced", steps
    for steps in history.values():
        claims(steps)  # no overlap anywhere
    listed = (await stack.ia.call("GET", "/_sim/projects"))["projects"]
    ids = [p["PROJECTID"] for p in listed]
    assert len(ids) == len(set(ids)) == total
    assert (await stack.ia.stats())["duplicate_create_attempts"] == 0
    record = await survivor.record(*next(iter(held)))
    assert record is not None and record["state"] == "synced"
    print(json.dumps({"held_by_the_dead_leader": len(held), "fresh_job_synced_after_s": round(took_over, 2)}))
    assert survivor.proc.stop() == 0


# ---- daemon.leader.lead in-process, against PostgreSQL -------------------------------------------


class Contender:
    """One `lead()` loop whose work only records that it runs."""

    def __init__(self, dsn: str, key: int, name: str,
                 work: Callable[[Contender], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.running = asyncio.Event()
        self.terms = 0
        self.conns: list[asyncpg.Connection] = []
        self._work = work

        async def connect(d: str) -> asyncpg.Connection:
            conn = await asyncpg.connect(d, timeout=10)
            self.conns.append(conn)
            return conn

        self.task = asyncio.create_task(lead(dsn, key, name, self.work, retry_every=0.1, check_every=0.1,
                                             connect=connect))

    async def work(self) -> None:
        self.terms += 1
        self.running.set()
        try:
            if self._work is not None:
                await self._work(self)
            await asyncio.Event().wait()
        finally:
            self.running.clear()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_lead_runs_the_work_in_one_contender_and_hands_over(database_dsn: str) -> None:
    key = lock_key("leader", TENANT)
    a = Contender(database_dsn, key, "a")
    await asyncio.wait_for(a.running.wait(), 10)
    b = Contender(database_dsn, key, "b")
    await asyncio.sleep(0.5)
    assert a.running.is_set() and not b.running.is_set()
    await a.stop()  # a graceful stop closes the session: the lock is free at once
    await asyncio.wait_for(b.running.wait(), 5)
    # The leader's session is killed by the server: it steps down, and the other takes over.
    a = Contender(database_dsn, key, "a")
    await asyncio.sleep(0.3)
    assert not a.running.is_set()
    admin = await asyncpg.connect(database_dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", b.conns[-1].get_server_pid())
    finally:
        await admin.close()
    await asyncio.wait_for(a.running.wait(), 5)

    async def b_stepped_down() -> bool:
        return not b.running.is_set()

    await wait_until(b_stepped_down, 5, "the old leader to step down")
    await a.stop()
    await b.stop()


async def test_lead_survives_database_errors_of_its_work(database_dsn: str) -> None:
    """A database error in the work (a TaskGroup's ExceptionGroup) ends the term, not the daemon."""

    async def flaky(c: Contender) -> None:
        if c.terms <= 2:
            async with asyncio.TaskGroup() as group:
                async def fail() -> None:
                    raise ConnectionResetError("the database went away")

                group.create_task(fail())

    c = Contender(database_dsn, lock_key("leader", TENANT), "flaky", flaky)

    async def third_term() -> bool:
        return c.terms >= 3 and c.running.is_set()

    await wait_until(third_term, 15, "a third term of leadership")
    assert not c.task.done()
    await c.stop()


async def test_lead_fails_loudly_on_a_bug_in_its_work(database_dsn: str) -> None:
    async def buggy(c: Contender) -> None:
        raise ValueError("a bug")

    c = Contender(database_dsn, lock_key("leader", TENANT), "buggy", buggy)
    with pytest.raises(ValueError, match="a bug"):
        await asyncio.wait_for(c.task, 10)
