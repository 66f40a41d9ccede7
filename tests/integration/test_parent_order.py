"""A job never waits silently on a failed parent, and an idle daemon does not poll the database hard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from daemon.store.rows import Finished, RecordKey
from daemon.sync.gate import Verdict
from daemon.sync.workers import WorkerPool
from statemachine import State
from tests.integration.kit import LEASE, Kit, open_kit
from tests.plugins.simulators import IntacctSim, ServiceTitanSim

pytestmark = pytest.mark.timeout(60)
LINKED = {"settings": {"enable_customer_project_linkage": True}, "mapping": {"customer_id": "C{customer_id}"}}


@pytest.fixture
async def kit(database_dsn: str, servicetitan_sim: ServiceTitanSim, intacct_sim: IntacctSim) -> AsyncIterator[Kit]:
    async with open_kit(database_dsn, servicetitan_sim, intacct_sim, **LINKED) as kit:
        yield kit


async def job_and_project_read(kit: Kit) -> tuple[int, int]:
    """The ids of project 1101 and its job 24001, of a customer Intacct knows, read from ServiceTitan."""
    customer = kit.st.create_customer(name="Known")
    kit.ia.add_customers(f"C{customer.id}")
    return await kit.read_new_job_of_a_new_project(customer.id)


async def test_a_job_of_a_failed_parent_fails_naming_it_and_comes_back_by_itself(kit: Kit) -> None:
    st, tk = kit.st, kit.tk
    known = st.create_customer(name="Known")
    ghost = st.create_customer(name="Ghost")  # unknown to Intacct: its project is refused
    kit.ia.add_customers(f"C{known.id}")
    project, job = await kit.read_new_job_of_a_new_project(known.id, project_customer_id=ghost.id)
    await kit.sync_all()
    parent = await kit.record("project", project)
    assert parent.state is State.FAILED
    record = await kit.record("job", job)
    assert record.state is State.FAILED, record.last_error
    assert record.last_error is not None
    words = record.last_error.description or ""
    assert "P-1101" in words and parent.last_error is not None
    assert str(parent.last_error.description2 or parent.last_error.description) in words
    assert record.last_error.parent_error == parent.last_error
    outcome = await tk.gate.ensure([RecordKey("job", job)], timeout=10)
    assert outcome.verdict is Verdict.REFUSED and "P-1101" in (outcome.results[0].error or "")
    assert "J-24001" not in kit.ia.projects()

    # The cause is fixed and the parent syncs: the job follows without anyone touching it.
    kit.ia.add_customers(f"C{ghost.id}")
    assert await tk.store.retry_failed([RecordKey("project", project)]) == [RecordKey("project", project)]
    await kit.sync_all()
    assert (await kit.record("job", job)).state is State.SYNCED
    assert kit.ia.projects()["J-24001"]["PARENTID"] == "P-1101"
    reasons = [h.reason for h in await tk.store.history(RecordKey("job", job))]
    assert "parent project synced" in reasons


async def test_an_idle_worker_claims_at_most_once_a_second(kit: Kit, pool: asyncpg.Pool,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    tk = kit.tk
    project, job = await job_and_project_read(kit)
    # The parent backs off for a while; its job is due but cannot go before it.
    [claimed] = await tk.store.claim_batch("w", 10, LEASE, only=[RecordKey("project", project)])
    await tk.store.finish("w", [Finished(claimed.key, State.PENDING, "transient", claimed.desired_hash, delay_s=60)],
                          {claimed.key: claimed.claim_id})
    async with pool.acquire() as conn:
        await conn.execute("UPDATE records SET next_attempt_at = now() - interval '1 minute' WHERE kind = 'job'")
    claims = 0
    claim_batch = tk.store.claim_batch

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal claims
        claims += 1
        return await claim_batch(*args, **kwargs)

    monkeypatch.setattr(tk.store, "claim_batch", counting)
    workers = WorkerPool(tk.store, tk.engine, tk.intacct_monitor, lambda: kit.config, kit.config.database.dsn)
    task = asyncio.create_task(workers.worker(0))
    await asyncio.sleep(3.0)
    workers.stopping.set()
    await asyncio.wait_for(task, 5)
    assert 1 <= claims <= 4, f"{claims} claim queries in 3 s by one idle worker"
    assert (await kit.record("job", job)).state is State.PENDING


async def test_a_job_failed_for_a_parent_that_synced_meanwhile_is_swept_back(kit: Kit, pool: asyncpg.Pool) -> None:
    tk = kit.tk
    project, job = await job_and_project_read(kit)
    await kit.sync_all()
    # What the race leaves: the job's failure for its parent stored after the parent's sync, so that
    # neither statement saw the other.
    async with pool.acquire() as conn:
        await conn.execute("UPDATE records SET state = 'failed', last_error = $1::jsonb WHERE kind = 'job'",
                           '{"class": "parent", "description": "parent project P-1101 failed: ..."}')
    assert await tk.store.revive_parent_failures() == 1
    record = await kit.record("job", job)
    assert record.state is State.PENDING and record.attempts == 0
    assert await tk.store.revive_parent_failures() == 0
