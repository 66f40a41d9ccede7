"""Records an explicit request waits for go ahead of background work whoever claims them.

`POST /v1/ensure` stores an unknown record with priority and claims it itself, but a worker woken by
the same insert may claim it first. That worker's request must still take the next Intacct slot, not
queue behind background batches (bench/latency.py measured the ensure p99 at 1.25 of its target
before). Once synced, the record's priority is spent: its later changes are background work again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import aiohttp
import pytest

from adapters.intacct import IntacctClient
from daemon.store.rows import RecordKey, RecordUpsert
from daemon.store.store import Store
from daemon.sync.engine import PRIORITY, SyncEngine
from daemon.sync.health import ConnectionMonitor
from statemachine import FieldMapping, JobFacts, RetryPolicy, Settings, State, desired_for_job
from tests.integration.test_sync_engine_real_services import T0
from tests.plugins.simulators import IntacctSim

LEASE = timedelta(seconds=60)
LATENCY = 0.3


def job_row(st_id: int, *, priority: int = 0, name: str = "Cust") -> RecordUpsert:
    facts = JobFacts(id=st_id, number=str(st_id), project_id=None, customer_id=1, customer_name=name)
    return RecordUpsert("job", st_id, str(st_id), None, 1, name, None, True, T0, T0,
                        desired_for_job(facts, None, Settings(), FieldMapping()), priority)


@pytest.fixture
async def client(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> IntacctClient:
    one_slot = IntacctClient(intacct_http, intacct_sim.credentials(), request_timeout=10.0, max_concurrent_requests=1)
    await one_slot.probe()  # the login happens before the latency is turned on
    intacct_sim.set_faults(latency=LATENCY)
    return one_slot


def worker_engine(store: Store, client: IntacctClient) -> SyncEngine:
    return SyncEngine(store, client, ConnectionMonitor("intacct"), owner="w1",
                      policy=lambda: RetryPolicy(max_attempts=3, backoff_initial=timedelta(0),
                                                 backoff_max=timedelta(0)),
                      max_functions=lambda: 50)


async def test_a_worker_sends_an_ensured_record_ahead_of_background_batches(
        store: Store, client: IntacctClient) -> None:
    await store.upsert([job_row(1), job_row(2), job_row(99, priority=PRIORITY)])
    engine = worker_engine(store, client)
    done: dict[int, float] = {}
    started = time.monotonic()

    async def worker(st_id: int) -> None:
        batch = await store.claim_batch("w1", 1, LEASE, only=[RecordKey("job", st_id)])
        assert [r.st_id for r in batch] == [st_id]
        landed = await engine.process(batch)  # as a worker calls it: no explicit priority
        assert landed == {RecordKey("job", st_id): State.SYNCED}
        done[st_id] = time.monotonic() - started

    slots = client._semaphore  # the per-company request cap

    async def until(check: Callable[[], bool]) -> None:
        while not check():
            await asyncio.sleep(0.005)

    holding = asyncio.create_task(worker(1))
    await until(lambda: slots.held == 1)  # takes the only slot
    background = asyncio.create_task(worker(2))
    await until(lambda: slots.waiting == 1)  # queues first
    ensured = asyncio.create_task(worker(99))
    await until(lambda: slots.waiting == 2)  # queues second, but is waited for
    assert not holding.done()  # all three were in the queue together
    await asyncio.gather(holding, background, ensured)
    assert done[1] < done[99] < done[2], done


async def test_the_priority_is_spent_once_the_record_is_synced(store: Store, client: IntacctClient) -> None:
    await store.upsert([job_row(7, priority=PRIORITY)])
    engine = worker_engine(store, client)
    await engine.process(await store.claim_batch("w1", 10, LEASE))
    record = await store.get(RecordKey("job", 7))
    assert record is not None and record.state is State.SYNCED and record.priority == 0

    await store.upsert([job_row(7, name="Renamed Cust")])  # a later change in ServiceTitan
    record = await store.get(RecordKey("job", 7))
    assert record is not None and record.state is State.PENDING and record.priority == 0
