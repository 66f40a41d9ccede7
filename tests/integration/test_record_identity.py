"""A record's PROJECTID is fixed once Intacct has it; inactive records are never recorded as existing
in Intacct unless Intacct said so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from daemon.reconcile.service import ReconcileService
from daemon.store.rows import RecordKey
from daemon.sync.gate import Verdict
from statemachine import State
from tests.integration.kit import Kit, open_kit
from tests.plugins.simulators import IntacctSim, ServiceTitanSim

pytestmark = pytest.mark.timeout(60)
NEW_TEMPLATES = {"job_project_id": "JOB-{job_number}", "project_project_id": "PRJ-{project_number}"}


@pytest.fixture
async def kit(database_dsn: str, servicetitan_sim: ServiceTitanSim, intacct_sim: IntacctSim) -> AsyncIterator[Kit]:
    async with open_kit(database_dsn, servicetitan_sim, intacct_sim) as kit:
        yield kit


async def _world(kit: Kit) -> tuple[int, int, int]:
    """A project and a job synced, a second job queued but not sent yet."""
    st, tk = kit.st, kit.tk
    customer = st.create_customer(name="Acme")
    project, job = await kit.read_new_job_of_a_new_project(customer.id)
    await kit.sync_all()
    later = st.create_job(customerId=customer.id, projectId=project, jobNumber="24002").id
    await tk.ingestor.ingest_jobs([await tk.servicetitan.get_job(later)])
    return project, job, later


async def _every_synced_record_is_in_intacct(kit: Kit) -> None:
    in_intacct = kit.ia.projects()
    for r in await kit.tk.store.list_records(state="synced", limit=1000):
        assert r.intacct_project_id in in_intacct, f"{r.key} synced as {r.intacct_project_id}, not in Intacct"


async def test_a_template_edit_applies_only_to_records_not_yet_in_intacct(kit: Kit) -> None:
    project, job, later = await _world(kit)
    kit.reconfigure(mapping=NEW_TEMPLATES)
    tk = kit.tk
    await tk.ingestor.ingest_projects([await tk.servicetitan.get_project(project)])  # as a poll or ensure reads them
    await tk.ingestor.ingest_jobs(await tk.servicetitan.get_jobs([job, later]))
    await kit.sync_all()
    assert (await kit.record("job", job)).intacct_project_id == "J-24001"
    assert (await kit.record("project", project)).intacct_project_id == "P-1101"
    assert (await kit.record("job", later)).intacct_project_id == "JOB-24002"  # not in Intacct before: new id
    assert set(kit.ia.projects()) == {"P-1101", "J-24001", "JOB-24002"}
    assert kit.ia.projects()["JOB-24002"]["PARENTID"] == "P-1101"  # the parent's fixed id
    await _every_synced_record_is_in_intacct(kit)
    outcome = await tk.gate.ensure([RecordKey("job", job)], timeout=10)
    assert outcome.verdict is Verdict.SYNCED and outcome.results[0].intacct_project_id == "J-24001"


async def test_a_renumbering_in_servicetitan_keeps_the_projectid(kit: Kit) -> None:
    project, job, _later = await _world(kit)
    kit.st.update_job(job, jobNumber="24009")
    kit.st.update_project(project, number="1199")
    tk = kit.tk
    await tk.ingestor.ingest_projects([await tk.servicetitan.get_project(project)])
    await tk.ingestor.ingest_jobs([await tk.servicetitan.get_job(job)])
    await kit.sync_all()
    ia = kit.ia.projects()
    assert set(ia) == {"P-1101", "J-24001", "J-24002"}
    assert ia["J-24001"]["NAME"] == "24009 Acme" and ia["J-24001"]["PARENTID"] == "P-1101"
    await _every_synced_record_is_in_intacct(kit)


async def test_reload_rederives_and_counts_the_records_that_keep_their_id(kit: Kit) -> None:
    project, job, later = await _world(kit)
    kit.reconfigure(mapping=NEW_TEMPLATES)
    report = await kit.tk.ingestor.rederive()
    assert report.kept_id == 2  # the project and the first job are in Intacct
    assert (await kit.record("job", later)).intacct_project_id == "JOB-24002"
    await kit.sync_all()
    assert set(kit.ia.projects()) == {"P-1101", "J-24001", "JOB-24002"}
    await _every_synced_record_is_in_intacct(kit)


async def test_reconciliation_compares_by_the_stored_projectid(kit: Kit) -> None:
    _project, _job, _later = await _world(kit)
    await kit.sync_all()
    kit.reconfigure(mapping=NEW_TEMPLATES, reconcile={"scope": "all", "repair": False})
    result = await ReconcileService.from_toolkit(kit.tk).run_once("cli", wait=True, email=False)
    assert result is not None and result.outcome is not None
    assert result.run.counts.get("matched", 0) == 3, result.outcome.findings
    assert result.outcome.findings == []


async def test_an_inactive_project_never_created_is_not_recorded_as_existing(kit: Kit) -> None:
    st, tk = kit.st, kit.tk
    customer = st.create_customer(name="Acme")
    project = st.create_project(name="Closed", number="1101", customerId=customer.id, active=False).id
    # Only the export feed says a record is inactive: as the poller reads it.
    await tk.ingestor.ingest_projects([replace(await tk.servicetitan.get_project(project), active=False)])
    await kit.sync_all()
    record = await kit.record("project", project)
    assert record.state is State.SYNCED and record.synced_fields is None and not record.intacct_confirmed
    assert kit.ia.projects() == {}
    outcome = await tk.gate.ensure([RecordKey("project", project)], timeout=10)
    assert outcome.verdict is Verdict.ABSENT and "not in Intacct" in (outcome.results[0].error or "")
    # Its job does not fail on a PARENTID Intacct refuses: it fails naming the parent, sending nothing.
    job = st.create_job(customerId=customer.id, projectId=project, jobNumber="24001").id
    await tk.ingestor.ingest_jobs([await tk.servicetitan.get_job(job)])
    await kit.sync_all()
    outcome = await tk.gate.ensure([RecordKey("job", job)], timeout=10)
    assert outcome.verdict is Verdict.REFUSED and "P-1101" in (outcome.results[0].error or "")
    assert "inactive" in (outcome.results[0].error or "")
    assert kit.ia.state.stats.functions["create"] == 0
