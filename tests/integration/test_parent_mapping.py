"""`enable_parent_project_mapping`: off means ServiceTitan projects are not synced at all.

Nothing is sent to Intacct for a project (no create, update or read-back), jobs carry no PARENTID,
`/v1/ensure` for a project answers 409, the reconciliation leaves the project side out. Turned on by
a reload: jobs keep what they have until the reconciliation repairs them (see the README).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from daemon.reconcile import report
from daemon.reconcile.service import ReconcileService
from daemon.store.rows import RecordKey
from daemon.sync.gate import Verdict
from statemachine import State
from tests.integration.kit import Kit, open_kit
from tests.plugins.simulators import IntacctSim, ServiceTitanSim

pytestmark = pytest.mark.timeout(60)
OFF = {"enable_parent_project_mapping": False}


@pytest.fixture
async def kit(database_dsn: str, servicetitan_sim: ServiceTitanSim, intacct_sim: IntacctSim) -> AsyncIterator[Kit]:
    async with open_kit(database_dsn, servicetitan_sim, intacct_sim, settings=OFF) as kit:
        yield kit


async def synced_job_of_a_project(kit: Kit, *, projects_feed: bool) -> tuple[Any, Any]:
    """Job 24001 of project 1101 "Riverside", read from ServiceTitan and synced with the mapping off.

    `projects_feed`: as the poller reads them, the projects feed first and then the jobs feed (which
    fetches parents); otherwise the jobs feed alone.
    """
    st, tk = kit.st, kit.tk
    customer = st.create_customer(name="Acme")
    project = st.create_project(name="Riverside", number="1101", customerId=customer.id)
    job = st.create_job(customerId=customer.id, projectId=project.id, jobNumber="24001")
    if projects_feed:
        await tk.ingestor.ingest_projects([await tk.servicetitan.get_project(project.id)])
    await tk.ingestor.ingest_jobs([await tk.servicetitan.get_job(job.id)])
    await kit.sync_all()
    return project, job


async def test_with_mapping_off_nothing_is_sent_for_projects(kit: Kit) -> None:
    tk = kit.tk
    project, job = await synced_job_of_a_project(kit, projects_feed=True)
    assert set(kit.ia.projects()) == {"J-24001"}
    assert kit.ia.projects()["J-24001"]["PARENTID"] is None
    assert (await kit.record("job", job.id)).state is State.SYNCED
    assert await tk.store.get(RecordKey("project", project.id)) is None  # not even queued
    assert kit.ia.state.stats.functions["readByName"] == 0  # no read-back either


async def test_ensure_for_a_project_answers_409_naming_the_setting(kit: Kit) -> None:
    customer = kit.st.create_customer(name="Acme")
    project = kit.st.create_project(name="Riverside", number="1101", customerId=customer.id)
    outcome = await kit.tk.gate.ensure([RecordKey("project", project.id)], timeout=10)
    assert outcome.verdict is Verdict.DISABLED
    assert "parent project mapping is off" in (outcome.results[0].error or "")
    assert kit.ia.projects() == {}


async def test_reconciliation_leaves_the_project_side_out(kit: Kit) -> None:
    tk = kit.tk
    project, job = await synced_job_of_a_project(kit, projects_feed=False)
    assert "P-1101" not in kit.ia.projects()
    # A parent project made while the mapping was on, still in Intacct.
    kit.ia.state.projects.create({"PROJECTID": "P-1101", "NAME": "Riverside", "PROJECTCATEGORY": "Contract"},
                                 kit.ia.state.customers)
    service = ReconcileService.from_toolkit(tk)
    result = await service.run_once("cli", wait=True, email=False)
    assert result is not None and result.outcome is not None
    assert result.run.counts.get("missing_in_intacct", 0) == 0
    assert result.run.counts.get("orphan_in_intacct", 0) == 0
    assert result.run.counts.get("matched", 0) == 1  # the job, with no PARENTID wanted
    assert [f for f in result.outcome.findings if f.kind == "project" or f.intacct_project_id == "P-1101"] == []
    text = report.render_text(service.report_data(result.run, result.outcome))
    assert "parent project mapping is off" in text
    assert set(kit.ia.projects()) == {"J-24001", "P-1101"}  # nothing queued for the project side


async def test_turned_on_by_reload_the_reconciliation_repairs_what_was_synced_while_off(kit: Kit) -> None:
    st, tk = kit.st, kit.tk
    project, job = await synced_job_of_a_project(kit, projects_feed=True)
    st.update_project(project.id, name="Riverside HVAC")  # changed while off: not followed
    await tk.ingestor.ingest_projects([await tk.servicetitan.get_project(project.id)])
    await kit.sync_all()
    assert set(kit.ia.projects()) == {"J-24001"}

    # The reload: settings change, every record's desired fields are derived again from what is stored.
    kit.reconfigure(settings={"enable_parent_project_mapping": True})
    report = await tk.ingestor.rederive()
    assert report.requeued == 0  # the project was never stored: the job has no parent to point at yet
    await kit.sync_all()
    assert set(kit.ia.projects()) == {"J-24001"} and kit.ia.projects()["J-24001"]["PARENTID"] is None

    # The next reconciliation finds the job's missing parent and repairs both, parent first.
    result = await ReconcileService.from_toolkit(tk).run_once("cli", wait=True, email=False)
    assert result is not None and result.run.counts.get("parent_mismatch", 0) == 1
    assert result.run.counts.get("missing_in_intacct", 0) == 1  # the project
    await kit.sync_all()
    ia = kit.ia.projects()
    assert ia["P-1101"]["NAME"] == "Riverside HVAC" and ia["J-24001"]["PARENTID"] == "P-1101"
    assert (await kit.record("project", project.id)).state is State.SYNCED


async def test_turned_on_by_reload_a_change_to_the_project_re_parents_its_jobs(kit: Kit) -> None:
    st, tk = kit.st, kit.tk
    project, job = await synced_job_of_a_project(kit, projects_feed=False)
    kit.reconfigure(settings={"enable_parent_project_mapping": True})
    await tk.ingestor.rederive()
    st.update_project(project.id, name="Riverside HVAC")  # the poller reads the change
    await tk.ingestor.ingest_projects([await tk.servicetitan.get_project(project.id)])
    await kit.sync_all()
    ia = kit.ia.projects()
    assert ia["P-1101"]["NAME"] == "Riverside HVAC" and ia["J-24001"]["PARENTID"] == "P-1101"
