"""The sync engine against what real services do (issue 10): the real store, the Intacct simulator.

Incomplete 200 answers are never bisected nor failed and creates are read back first; a field that
Intacct did not clear fails the record once instead of looping; a PROJECTID Intacct cannot hold fails
before anything is sent; an unexpected exception is a counted transient failure, never a loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from adapters.intacct import Function, FunctionResult, IntacctClient, IntacctProject
from daemon.store.rows import RecordKey, RecordUpsert
from daemon.store.store import Store
from daemon.sync.engine import SyncEngine
from daemon.sync.health import ERROR, ConnectionMonitor
from statemachine import (
    FieldMapping,
    JobFacts,
    ProjectFacts,
    RetryPolicy,
    Settings,
    State,
    desired_for_job,
    desired_for_project,
)
from tests.plugins.simulators import IntacctSim

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
NO_WAIT = RetryPolicy(max_attempts=3, backoff_initial=timedelta(0), backoff_max=timedelta(0))


def job_row(st_id: int, project: int | None = None, *, number: str | None = None, minute: int = 0) -> RecordUpsert:
    number = number or str(st_id)
    facts = JobFacts(id=st_id, number=number, project_id=project, customer_id=1, customer_name="Cust")
    parent = None if project is None else ProjectFacts(project, f"P{project}", "Proj", 1, "Cust")
    settings = Settings(enable_parent_project_mapping=True)
    modified = T0 + timedelta(minutes=minute)
    return RecordUpsert("job", st_id, number, None, 1, "Cust", project, True, T0, modified,
                        desired_for_job(facts, parent, settings, FieldMapping()), 0)


def project_row(st_id: int) -> RecordUpsert:
    facts = ProjectFacts(id=st_id, number=f"P{st_id}", name="Proj", customer_id=1, customer_name="Cust")
    return RecordUpsert("project", st_id, facts.number, "Proj", 1, "Cust", None, True, T0, T0,
                        desired_for_project(facts, Settings(), FieldMapping()), 0)


def engine(store: Store, intacct: Any, monitor: ConnectionMonitor | None = None) -> SyncEngine:
    return SyncEngine(store, intacct, monitor or ConnectionMonitor("intacct"), owner="w1",
                      policy=lambda: NO_WAIT, max_functions=lambda: 50,
                      template_of=lambda kind: "J-{job_number}" if kind == "job" else "P-{project_number}")


async def run_once(store: Store, eng: SyncEngine) -> dict[RecordKey, State]:
    batch = await store.claim_batch("w1", 100, LEASE)
    return await eng.process(batch)


@pytest.fixture
def client(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> IntacctClient:
    return IntacctClient(intacct_http, intacct_sim.credentials(), request_timeout=5.0)


# -- 1 ------------------------------------------------------------------------------------------------


async def test_a_cut_off_answer_is_not_bisected_and_creates_are_read_back(
    store: Store, intacct_sim: IntacctSim, client: IntacctClient
) -> None:
    await store.upsert([job_row(n) for n in (1, 2, 3)])
    await client.probe()
    intacct_sim.set_faults(cut_off_rate=1.0)
    requests_before = intacct_sim.state.stats.requests
    monitor = ConnectionMonitor("intacct", outage_after=0.0, outage_min_failures=2)
    eng = engine(store, client, monitor)
    landed = await run_once(store, eng)
    assert set(landed.values()) == {State.PENDING}  # never failed
    assert intacct_sim.state.stats.requests == requests_before + 1  # one request: not bisected
    assert set(intacct_sim.projects()) == {"J-1", "J-2", "J-3"}  # they did land
    records = await store.get_many([RecordKey("job", n) for n in (1, 2, 3)])
    assert all(r.verify_first for r in records.values())
    assert monitor.state != ERROR
    landed = await run_once(store, eng)  # a second incomplete answer in a row: counts toward the connection
    assert set(landed.values()) == {State.BLOCKED}, landed
    assert monitor.state == ERROR

    intacct_sim.set_faults(cut_off_rate=0.0)
    await monitor.succeeded()  # as the probe loop does once Intacct answers again
    await store.unblock_all()
    landed = await run_once(store, eng)
    assert set(landed.values()) == {State.SYNCED}
    stats = intacct_sim.state.stats
    assert stats.creates_applied == 3 and stats.duplicate_create_attempts == 0  # read, never created twice


# -- 5 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("honoured", [True, False])
async def test_clearing_parentid_is_read_back(
    store: Store, intacct_sim: IntacctSim, client: IntacctClient, honoured: bool
) -> None:
    await store.upsert([project_row(5), job_row(1, project=5)])
    eng = engine(store, client)
    assert await run_once(store, eng) == {RecordKey("project", 5): State.SYNCED, RecordKey("job", 1): State.SYNCED}
    assert intacct_sim.projects()["J-1"]["PARENTID"] == "P-P5"

    intacct_sim.set_faults(clear_by_empty_element=honoured)
    await store.upsert([job_row(1, project=None, minute=1)])  # detached in ServiceTitan
    landed = await run_once(store, eng)
    record = await store.get(RecordKey("job", 1))
    assert record is not None
    if honoured:
        assert landed[RecordKey("job", 1)] is State.SYNCED
        assert intacct_sim.projects()["J-1"]["PARENTID"] is None
        return
    assert landed[RecordKey("job", 1)] is State.FAILED
    assert record.last_error is not None
    assert "Intacct kept PARENTID='P-P5'" in record.last_error.description
    updates = intacct_sim.state.stats.updates_applied
    assert await store.claim_batch("w1", 100, LEASE) == []  # failed stays failed: never re-planned
    assert intacct_sim.state.stats.updates_applied == updates


# -- 8 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "problem"), [
    ("1,2", "a comma"),
    ("1" * 30, "32 characters"),
    ("1" * 19, "21 characters"),
])
async def test_a_projectid_intacct_cannot_hold_fails_naming_template_and_value(
    store: Store, intacct_sim: IntacctSim, client: IntacctClient, number: str, problem: str
) -> None:
    await store.upsert([job_row(1, number=number), job_row(2)])
    landed = await run_once(store, engine(store, client))
    assert landed == {RecordKey("job", 1): State.FAILED, RecordKey("job", 2): State.SYNCED}
    record = await store.get(RecordKey("job", 1))
    assert record is not None and record.last_error is not None
    description = record.last_error.description
    assert "'J-{job_number}'" in description and repr(f"J-{number}") in description and problem in description
    assert set(intacct_sim.projects()) == {"J-2"}  # nothing sent for the bad one


# -- 9 ------------------------------------------------------------------------------------------------


class Exploding:
    """A port whose every call raises what no adapter should: a bug."""

    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, functions: Sequence[Function], *, priority: bool = False) -> list[FunctionResult]:
        self.calls += 1
        raise RuntimeError("boom in the port")

    async def read_projects(self, project_ids: Sequence[str], *, priority: bool = False) -> dict[str, IntacctProject]:
        self.calls += 1
        raise RuntimeError("boom in the port")


async def test_an_unexpected_exception_is_a_counted_transient_failure(store: Store) -> None:
    await store.upsert([job_row(1), job_row(2)])
    port = Exploding()
    eng = engine(store, port)
    states = []
    for _ in range(NO_WAIT.max_attempts):
        landed = await run_once(store, eng)
        states.append(set(landed.values()))
    assert states == [{State.PENDING}, {State.PENDING}, {State.FAILED}]
    assert await store.claim_batch("w1", 100, LEASE) == []  # no release/reclaim loop
    record = await store.get(RecordKey("job", 1))
    assert record is not None and record.attempts == NO_WAIT.max_attempts
    assert record.last_error is not None and record.last_error.description == "RuntimeError: boom in the port"
    assert port.calls == NO_WAIT.max_attempts  # once per attempt (the second attempt reads first)
