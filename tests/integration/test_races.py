"""The narrower races: each result lands on its own claim, unknown updates are read back, the jobs of a
changed project are refreshed durably, a concurrent first insert keeps the newest data, ensure's
timeout bounds the whole call, the CLI keeps its claim alive, a failed record comes back with fresh
attempts."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import pytest
import yaml

from daemon.store.rows import Finished, RecordKey, Synced
from daemon.store.store import Store
from daemon.sync import ingest
from daemon.sync.gate import Verdict
from statemachine import State
from tests.acceptance.harness import REPO
from tests.integration.kit import LEASE, Kit, config_data, open_kit
from tests.integration.test_store import T0, job_row
from tests.plugins.simulators import IntacctSim, ServiceTitanSim

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def kit(database_dsn: str, servicetitan_sim: ServiceTitanSim, intacct_sim: IntacctSim) -> AsyncIterator[Kit]:
    async with open_kit(database_dsn, servicetitan_sim, intacct_sim) as kit:
        yield kit


# ---- 5: compare-and-set on the claim, not only on the owner ---------------------------------------

async def test_a_stale_result_of_an_earlier_claim_does_not_land_on_a_newer_one(store: Store) -> None:
    await store.upsert([job_row(1)])
    [first] = await store.claim_batch("w1", 10, LEASE)
    await store.release("w1", [first], verify_first=False)
    [second] = await store.claim_batch("w1", 10, LEASE)  # same process, a new claim
    assert first.claim_id != second.claim_id
    stale = Synced(first.key, first.desired_hash, first.desired, 1)
    assert await store.mark_synced("w1", [stale], {first.key: first.claim_id}) == {}
    late = Finished(first.key, State.FAILED, "late", first.desired_hash)
    assert await store.finish("w1", [late], {first.key: first.claim_id}) == {}
    now = await store.get(first.key)
    assert now is not None and now.state is State.SYNCING and now.claim_id == second.claim_id


# ---- 6: an update whose outcome is unknown is read back -------------------------------------------

async def test_an_update_with_a_lost_answer_is_read_back_before_declaring_sync(kit: Kit) -> None:
    st, tk = kit.st, kit.tk
    customer = st.create_customer(name="Acme")
    project = st.create_project(name="First", number="1101", customerId=customer.id).id
    await tk.ingestor.ingest_projects([await tk.servicetitan.get_project(project)])
    await kit.sync_all()
    st.update_project(project, name="Second")
    await tk.ingestor.ingest_projects([await tk.servicetitan.get_project(project)])
    kit.ia.set_faults(lost_answer_rate=1.0)  # Intacct applies the update, the answer is lost
    batch = await tk.store.claim_batch(tk.engine.owner, 10, LEASE)
    await tk.engine.process(batch)
    kit.ia.set_faults(lost_answer_rate=0.0)
    assert kit.ia.projects()["P-1101"]["NAME"] == "Second"
    st.update_project(project, name="First")  # changed back before the retry
    await tk.ingestor.ingest_projects([await tk.servicetitan.get_project(project)])
    async with tk.pool.acquire() as conn:
        await conn.execute("UPDATE records SET next_attempt_at = NULL")
    await kit.sync_all()
    assert (await kit.record("project", project)).state is State.SYNCED
    assert kit.ia.projects()["P-1101"]["NAME"] == "First"


# ---- 7: refreshing a project's jobs is part of storing the page -----------------------------------

async def test_refreshing_the_jobs_of_a_changed_project_survives_a_failure(kit: Kit,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    kit.reconfigure(mapping={"job_project_name": "{job_number} {project_name}"})
    st, tk = kit.st, kit.tk
    customer = st.create_customer(name="Acme")
    project, job = await kit.read_new_job_of_a_new_project(customer.id, project_name="First")
    await kit.sync_all()
    st.update_project(project, name="Renamed")  # the job's NAME renders its project's name
    await tk.store.set_cursor("projects", "before")
    page = [await tk.servicetitan.get_project(project)]

    def crash(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise RuntimeError("the process dies while refreshing the project's jobs")

    monkeypatch.setattr(ingest, "desired_for_job", crash)
    with pytest.raises(RuntimeError):
        await tk.ingestor.ingest_projects(page, cursor=("projects", "after"))
    monkeypatch.undo()
    # Either the page did not count as read, or the jobs were refreshed with it.
    if await tk.store.get_cursor("projects") == "after":
        jobs_refreshed = (await kit.record("job", job)).desired["NAME"]
        raise AssertionError(f"the cursor moved past the page but the jobs were not refreshed ({jobs_refreshed})")
    await tk.ingestor.ingest_projects(page, cursor=("projects", "after"))  # the replay after a restart
    refreshed = await kit.record("job", job)
    assert refreshed.state is State.PENDING and refreshed.desired["NAME"] == "24001 Renamed"


# ---- 8: a concurrent first insert keeps the newest ServiceTitan data ------------------------------

async def test_a_concurrent_first_insert_keeps_the_newest_data(store: Store, pool: asyncpg.Pool) -> None:
    older, newer = job_row(1, number="old", modified=T0), job_row(1, number="new", modified=T0 + timedelta(minutes=1))
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        other = Store(pool, store.tenant_id)
        # The other request inserted the older row first and has not committed yet.
        await conn.execute(
            "INSERT INTO records (tenant_id, kind, st_id, state, st_number, st_modified_on, desired, desired_hash,"
            " intacct_project_id) VALUES ($1, 'job', 1, 'pending', 'old', $2, $3::jsonb, $4, 'J-old')",
            store.tenant_id, older.modified_on, '{"PROJECTID": "J-old"}', older.desired.digest())
        racing = asyncio.create_task(other.upsert([newer]))
        await asyncio.sleep(0.3)  # blocked on the uncommitted row
        await tx.commit()
        await asyncio.wait_for(racing, 10)
    record = await store.get(RecordKey("job", 1))
    assert record is not None and record.st_number == "new" and record.intacct_project_id == "J-new"


# ---- 9: ensure's timeout, the CLI's heartbeat, fresh attempts ------------------------------------

async def test_ensure_timeout_bounds_the_servicetitan_fetch(kit: Kit) -> None:
    customer = kit.st.create_customer(name="Acme")
    job = kit.st.create_job(customerId=customer.id, jobNumber="24001").id
    kit.st.set_faults(latency=4.0)
    started = time.monotonic()
    outcome = await kit.tk.gate.ensure([RecordKey("job", job)], timeout=1.0)
    took = time.monotonic() - started
    assert took < 2.5, f"ensure with timeout_s=1 took {took:.1f}s"
    assert outcome.verdict is Verdict.UNAVAILABLE


async def test_the_sync_command_keeps_its_claim_alive(kit: Kit, tmp_path: Path) -> None:
    customer = kit.st.create_customer(name="Acme")
    job = kit.st.create_job(customerId=customer.id, jobNumber="24001").id
    kit.ia.set_faults(latency=3.0)  # a slow Intacct: the request outlives the lease three times over
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(kit.config.database.dsn, kit.st, kit.ia,
                                               sync={"lease": "1s"}, intacct={"request_timeout": "20s"})))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "daemon.cli", "--config", str(path), "sync", "--job", str(job), "--timeout", "30",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    sweeper = asyncio.create_task(_sweep(kit.tk.store))  # another replica's heartbeat sweeps dead claims
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 45)
    finally:
        sweeper.cancel()
    assert proc.returncode == 0, out.decode()
    reasons = [h.reason for h in await kit.tk.store.history(RecordKey("job", job))]
    assert "lease expired" not in reasons, reasons


async def _sweep(store: Store) -> None:
    while True:
        await store.expire_leases()
        await asyncio.sleep(0.1)


async def test_a_failed_record_changed_in_servicetitan_starts_with_fresh_attempts(store: Store) -> None:
    await store.upsert([job_row(1, number="a")])
    for _ in range(3):  # transient failures spend the attempts
        [rec] = await store.claim_batch("w1", 10, LEASE)
        await store.finish("w1", [Finished(rec.key, State.PENDING, "transient", rec.desired_hash, delay_s=0)],
                           {rec.key: rec.claim_id})
    [rec] = await store.claim_batch("w1", 10, LEASE)
    await store.upsert([job_row(1, number="b", modified=T0 + timedelta(seconds=1))])  # changed meanwhile
    landed = await store.finish("w1", [Finished(rec.key, State.FAILED, "attempts exhausted", rec.desired_hash)],
                                {rec.key: rec.claim_id})
    assert landed == {rec.key: State.PENDING}
    now = await store.get(rec.key)
    assert now is not None and now.attempts == 0
