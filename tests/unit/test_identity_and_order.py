"""Identity (a PROJECTID is fixed once Intacct has it) and order (a job never waits silently on its parent)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from statemachine import FieldMapping, JobFacts, ProjectFacts, Settings, State, desired_for_job, desired_for_project
from statemachine.desired import changed_fields
from statemachine.identity import keep_identity, same_project
from statemachine.order import PARENT_ERROR_CLASS, Go, Parent, parent_verdict

PROJECT = ProjectFacts(id=7, number="P100", name="Riverside", customer_id=42, customer_name="Acme")
JOB = JobFacts(id=123, number="1001", project_id=7, customer_id=42, customer_name="Acme")
RENAMED = FieldMapping(job_project_id="JOB-{job_number}", project_project_id="PRJ-{project_number}")


def test_a_confirmed_project_keeps_its_projectid_under_a_new_template() -> None:
    fresh = desired_for_project(PROJECT, Settings(), RENAMED)
    assert fresh.project_id == "PRJ-P100"
    assert keep_identity(fresh, "P-P100").project_id == "P-P100"
    assert keep_identity(fresh, None) is fresh  # not in Intacct yet: the template decides


def test_jobs_carry_their_parents_confirmed_projectid() -> None:
    parent = replace(PROJECT, intacct_project_id="P-P100")
    assert desired_for_job(JOB, parent, Settings(), RENAMED).parent_id == "P-P100"
    assert desired_for_job(JOB, PROJECT, Settings(), RENAMED).parent_id == "PRJ-P100"


def test_another_projectid_is_another_project_never_an_update() -> None:
    want = desired_for_job(JOB, PROJECT, Settings(), FieldMapping()).fields()
    have = {**want, "PROJECTID": "J-OLD"}
    assert not same_project(want, have) and same_project(want, want)
    with pytest.raises(ValueError, match="PROJECTID"):
        changed_fields(want, have)


def test_parent_mapping_off_syncs_jobs_only() -> None:
    off = Settings(enable_parent_project_mapping=False)
    assert off.syncs("job") and not off.syncs("project")
    assert Settings().syncs("project")
    assert not Settings(enable_intacct_projects=False, enable_parent_project_mapping=False,
                        enable_project_automatic_synchronization=False,
                        use_project_name_for_intacct_project_name=False).syncs("job")


def test_a_job_waits_for_a_parent_on_its_way() -> None:
    for state in (State.PENDING, State.SYNCING, State.BLOCKED):
        assert parent_verdict("P-1", Parent("P-1", state, in_intacct=False)).go is Go.WAIT
    assert parent_verdict("P-1", Parent("P-1", State.SYNCED, in_intacct=True)).go is Go.READY
    assert parent_verdict("P-1", Parent("P-1", State.PENDING, in_intacct=True)).go is Go.READY  # renamed: still there
    assert parent_verdict(None, None).go is Go.READY


def test_a_job_fails_naming_its_failed_parent_and_its_error() -> None:
    error = {"class": "permanent", "errorno": "BL01001973", "description": None,
             "description2": "Invalid Customer 'C9' specified."}
    verdict = parent_verdict("P-1", Parent("P-1", State.FAILED, in_intacct=False, error=error))
    assert verdict.go is Go.FAIL and verdict.error is not None
    assert verdict.error["class"] == PARENT_ERROR_CLASS and verdict.error["parent"] == "P-1"
    assert "P-1" in verdict.reason and "BL01001973" in verdict.reason and "Invalid Customer" in verdict.reason
    assert verdict.error["parent_error"] == error


def test_a_job_of_an_inactive_parent_never_created_fails_instead_of_waiting() -> None:
    verdict = parent_verdict("P-1", Parent("P-1", State.SYNCED, in_intacct=False, active=False))
    assert verdict.go is Go.FAIL and "inactive" in verdict.reason
    assert parent_verdict("P-1", None).go is Go.FAIL  # no parent record: never silent either
