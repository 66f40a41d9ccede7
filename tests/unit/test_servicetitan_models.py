"""ServiceTitan models: lenient parsing, timestamps, refusals, and the spec's own examples."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import PermanentError
from adapters.servicetitan import (
    Customer,
    Job,
    Project,
    ServiceTitanCredentials,
    export_start,
    format_time,
    parse_time,
)
from adapters.servicetitan.models import RejectedRow
from adapters.servicetitan.wire import parse_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "servicetitan"


def _example(doc: str, path: str, method: str = "get", status: str = "200") -> Any:
    spec = json.loads((FIXTURES / doc).read_text(encoding="utf-8"))
    return spec["paths"][path][method]["responses"][status]["content"]["application/json"]["example"]


# ---------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-07-19T20:35:38.2876004Z", datetime(2021, 7, 19, 20, 35, 38, 287600, tzinfo=UTC)),
        ("2021-07-19T20:35:38.2876009Z", datetime(2021, 7, 19, 20, 35, 38, 287600, tzinfo=UTC)),  # truncated
        ("2021-07-19T00:00:00Z", datetime(2021, 7, 19, tzinfo=UTC)),
        ("2021-07-19T20:35:38+00:00", datetime(2021, 7, 19, 20, 35, 38, tzinfo=UTC)),
        ("2025-10-13T00:00:00", datetime(2025, 10, 13, tzinfo=UTC)),  # no offset: UTC
        ("2025-10-13T00:00:00.5", datetime(2025, 10, 13, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2021-07-19T22:35:38.1+02:00", datetime(2021, 7, 19, 20, 35, 38, 100000, tzinfo=UTC)),
        ("2020-01-01", datetime(2020, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_servicetitan_forms(text: str, expected: datetime) -> None:
    got = parse_time(text)
    assert got == expected
    assert got.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "string",
        "",
        "2021-13-01T00:00:00Z",
        "19/07/2021",
        "2021-07-19T25:00:00Z",
        "2021-02-30T20:35:38.2876004Z",
        "2021-07-19T20:35:38.287-004Z",
        "2021-07-19T20:35:38.287600xZ",
    ],
)
def test_parse_time_refuses_non_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_format_time_writes_seven_digits_and_z() -> None:
    dt = datetime(2021, 7, 19, 20, 35, 38, 287600, tzinfo=UTC)
    assert format_time(dt) == "2021-07-19T20:35:38.2876000Z"
    assert format_time(dt.astimezone(timezone(timedelta(hours=-5)))) == "2021-07-19T20:35:38.2876000Z"
    assert format_time(datetime(2021, 7, 19)) == "2021-07-19T00:00:00.0000000Z"  # naive = UTC
    assert export_start(dt) == format_time(dt)


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1)))
def test_format_then_parse_round_trips(dt: datetime) -> None:
    assert parse_time(format_time(dt)) == dt


# ---------------------------------------------------------------------------- credentials


def test_credentials_repr_masks_secrets() -> None:
    creds = ServiceTitanCredentials(
        api_base_url="https://api.servicetitan.io",
        auth_url="https://auth.servicetitan.io/connect/token",
        tenant_id=1234567,
        app_key="ak1.very-secret-app-key",
        client_id="cid.client",
        client_secret="cs1.very-secret",
    )
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "very-secret" not in text
        assert "cid.client" in text and "1234567" in text


# ---------------------------------------------------------------------------- jobs, projects, customers

JOB = {
    "id": 123,
    "jobNumber": "24001",
    "projectId": 7,
    "customerId": 55,
    "locationId": 56,
    "businessUnitId": 3,
    "jobStatus": "Scheduled",
    "createdOn": "2021-07-19T20:35:38.2876004Z",
    "modifiedOn": "2021-07-20T08:00:00Z",
    "someFieldFromTheFuture": {"x": 1},
}


def test_job_from_json_reads_the_fields_and_ignores_unknown_ones() -> None:
    job = Job.from_json(JOB)
    assert job == Job(
        id=123,
        job_number="24001",
        project_id=7,
        customer_id=55,
        location_id=56,
        business_unit_id=3,
        job_status="Scheduled",
        created_on=datetime(2021, 7, 19, 20, 35, 38, 287600, tzinfo=UTC),
        modified_on=datetime(2021, 7, 20, 8, tzinfo=UTC),
        active=True,
    )
    assert Job.from_json({**JOB, "active": False}).active is False


def test_job_tolerates_nulls_in_required_fields() -> None:
    row = {k: None for k in JOB} | {"id": 9, "createdOn": "2021-07-19T20:35:38Z"}
    job = Job.from_json(row)
    assert job.job_number == "9"  # ServiceTitan's default job number is the id
    assert job.project_id is None and job.customer_id is None and job.job_status is None
    assert job.modified_on == job.created_on
    assert job.active is True


def test_job_accepts_numbers_where_strings_are_expected_and_numeric_strings_as_ids() -> None:
    job = Job.from_json({**JOB, "jobNumber": 24001, "projectId": "7"})
    assert job.job_number == "24001" and job.project_id == 7


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({k: v for k, v in JOB.items() if k != "id"}, "'id'"),
        ({**JOB, "id": None}, "'id'"),
        ({**JOB, "id": "abc"}, "'id'"),
        ({**JOB, "createdOn": "string"}, "'createdOn'"),
        ({**JOB, "modifiedOn": "yesterday"}, "'modifiedOn'"),
        ({**JOB, "createdOn": None, "modifiedOn": None}, "'createdOn'"),
        ({**JOB, "projectId": "seven"}, "'projectId'"),
    ],
)
def test_job_refuses_what_it_cannot_use_and_names_the_field(row: dict[str, Any], field: str) -> None:
    with pytest.raises(PermanentError) as caught:
        Job.from_json(row)
    assert field in str(caught.value)


def test_rows_that_cannot_be_parsed_are_set_apart() -> None:
    rows, rejected = parse_rows(
        [JOB, {"jobNumber": "x"}, {**JOB, "id": 124, "createdOn": "string"}], Job.from_json, "jobs"
    )
    assert [j.id for j in rows] == [123]
    assert rejected == (
        RejectedRow("jobs", None, "ServiceTitan job row without field 'id'"),
        RejectedRow("jobs", "124", "ServiceTitan job 124: field 'createdOn' is not a timestamp: 'string'"),
    )


def test_active_as_text() -> None:
    assert Job.from_json({**JOB, "active": "false"}).active is False
    assert Job.from_json({**JOB, "active": "True"}).active is True


def test_job_refuses_a_row_that_is_not_an_object() -> None:
    with pytest.raises(PermanentError):
        Job.from_json([1, 2])  # type: ignore[arg-type]


PROJECT = {
    "id": 7,
    "number": "1001",
    "name": "Riverside Office HVAC Retrofit",
    "customerId": 55,
    "status": "In Progress",
    "createdOn": "2021-07-19T20:35:38.2876004Z",
    "modifiedOn": None,
    "jobIds": [123, 124],
}


def test_project_null_modified_on_falls_back_to_created_on() -> None:
    project = Project.from_json(PROJECT)
    assert project.modified_on == project.created_on
    assert project.job_ids == (123, 124)
    assert project.name == "Riverside Office HVAC Retrofit"
    assert project.active is True


def test_project_tolerates_null_name_number_and_job_ids() -> None:
    project = Project.from_json({**PROJECT, "name": None, "number": None, "jobIds": None, "active": False})
    assert project.name is None and project.number == "7" and project.job_ids == () and not project.active


def test_project_refuses_bad_job_ids() -> None:
    with pytest.raises(PermanentError, match="'jobIds'"):
        Project.from_json({**PROJECT, "jobIds": ["x"]})
    with pytest.raises(PermanentError, match="without field 'id'"):
        Project.from_json({k: v for k, v in PROJECT.items() if k != "id"})


def test_customer_from_json() -> None:
    assert Customer.from_json({"id": 5, "name": "Smith Residence", "active": False}) == Customer(
        5, "Smith Residence", False
    )
    assert Customer.from_json({"id": 5, "name": None, "active": None}) == Customer(5, "", True)


# ---------------------------------------------------------------------------- the spec's own examples
#
# The OpenAPI examples use placeholders: 0 for numbers and "string" for every string, timestamps
# included. Decision: a timestamp that is not a time is refused with a PermanentError naming the
# field (a guessed time would corrupt the modifiedOn ordering of upserts), and so is the id 0 (ids
# are 1…2^63−1); the tests check those refusals, then substitute real times and an id and check
# that every other placeholder is accepted.

_TIMES = {"createdOn": "2021-07-19T20:35:38.2876004Z", "modifiedOn": "2021-07-19T20:35:38.2876004Z"}


def _with_times(row: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(row), **_TIMES, "id": 1}


@pytest.mark.parametrize(
    ("path", "model", "envelope"),
    [
        ("/tenant/{tenant}/jobs/{id}", Job, None),
        ("/tenant/{tenant}/jobs", Job, "page"),
        ("/tenant/{tenant}/export/jobs", Job, "export"),
        ("/tenant/{tenant}/projects/{id}", Project, None),
        ("/tenant/{tenant}/projects", Project, "page"),
        ("/tenant/{tenant}/export/projects", Project, "export"),
    ],
)
def test_models_accept_the_jpm_spec_examples(path: str, model: Any, envelope: str | None) -> None:
    example = _example("jpm-v2.json", path)
    rows = [example] if envelope is None else example["data"]
    assert rows
    for row in rows:
        with pytest.raises(PermanentError, match="'id' is outside"):
            model.from_json(row)  # "id": 0
        with pytest.raises(PermanentError, match="'createdOn'"):
            model.from_json({**row, "id": 1})  # "createdOn": "string"
        parsed = model.from_json(_with_times(row))
        assert parsed.id == 1
        assert parsed.created_on == datetime(2021, 7, 19, 20, 35, 38, 287600, tzinfo=UTC)
    if envelope == "export":
        assert isinstance(example["continueFrom"], str) and isinstance(example["hasMore"], bool)
        assert model.from_json(_with_times(rows[0])).active is True


def test_job_model_reads_the_example_fields() -> None:
    job = Job.from_json(_with_times(_example("jpm-v2.json", "/tenant/{tenant}/jobs/{id}")))
    assert (job.job_number, job.project_id, job.customer_id, job.job_status) == ("string", 0, 0, "string")


def test_customer_model_accepts_the_crm_spec_examples() -> None:
    single = _example("crm-v2.json", "/tenant/{tenant}/customers/{id}")
    listed = _example("crm-v2.json", "/tenant/{tenant}/customers")["data"]
    for row in [single, *listed]:
        with pytest.raises(PermanentError, match="'id' is outside"):
            Customer.from_json(row)
        assert Customer.from_json({**row, "id": 1}) == Customer(1, "string", True)
