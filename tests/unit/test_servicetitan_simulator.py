"""The ServiceTitan simulator's state without HTTP: change log, export pages, lists, seeds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from simulators.servicetitan import Faults, InputError, ServiceTitanSimOptions, SimState, demo_seed
from simulators.servicetitan.feeds import decode_from, encode_token, export_page, list_page
from simulators.servicetitan.timefmt import TICKS_PER_SECOND, format_ticks, parse_ticks

T0 = parse_ticks("2026-01-01T00:00:00Z")


class Clock:
    """A clock in ticks that tests move by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * TICKS_PER_SECOND)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> SimState:
    return SimState(ServiceTitanSimOptions(clock=clock, export_page_size=3, seed=1))


def _export(state: SimState, kind: str, start: str | None, recent: bool = True) -> dict[str, Any]:
    body, _ = export_page(state.tenant(1), kind, start, recent, state.faults, state.rng, state.clock())
    return body


def _drain(state: SimState, kind: str, start: str | None, recent: bool = True) -> tuple[list[int], str]:
    ids: list[int] = []
    position = start
    for _ in range(1000):
        body = _export(state, kind, position, recent)
        ids += [row["id"] for row in body["data"]]
        position = body["continueFrom"]
        if not body["hasMore"]:
            return ids, position
    raise AssertionError("export never ended")


# ---------------------------------------------------------------------------- times


def test_times_have_seven_digits_and_z() -> None:
    ticks = parse_ticks("2021-07-19T20:35:38.2876004Z")
    assert format_ticks(ticks) == "2021-07-19T20:35:38.2876004Z"
    assert parse_ticks("2021-07-19T20:35:38+00:00") == parse_ticks("2021-07-19T20:35:38Z")
    assert parse_ticks("2021-07-19T22:35:38+02:00") == parse_ticks("2021-07-19T20:35:38")
    assert format_ticks(parse_ticks("2020-01-01")) == "2020-01-01T00:00:00.0000000Z"


@pytest.mark.parametrize("text", ["2024-01-01T00:00:00 00:00", "string", "2024-02-30", "2024-01-01T24:00:00Z"])
def test_time_parser_refuses_garbage(text: str) -> None:
    # The first is what a raw `+` becomes after URL decoding: ServiceTitan refuses it too.
    with pytest.raises(ValueError):
        parse_ticks(text)


# ---------------------------------------------------------------------------- export feed


def test_tokens_are_opaque_and_round_trip() -> None:
    token = encode_token(42, T0)
    assert "42" not in token
    assert decode_from(token) == (42, T0)
    assert decode_from(encode_token(0, None)) == (0, None)
    assert decode_from("") == (0, None)
    assert decode_from("2026-01-01") == (0, T0)
    with pytest.raises(ValueError):
        decode_from("not-a-token-nor-a-date")


def test_export_pages_follow_change_order_and_end_with_has_more_false(state: SimState) -> None:
    tenant = state.tenant(1)
    ids = [tenant.create_job({}).id for _ in range(7)]
    first = _export(state, "jobs", None)
    assert [r["id"] for r in first["data"]] == ids[:3] and first["hasMore"] is True
    got, end = _drain(state, "jobs", None)
    assert got == ids
    # Polling again at the end returns nothing new and keeps the position.
    again = _export(state, "jobs", end)
    assert again == {"hasMore": False, "continueFrom": end, "data": []}


def test_export_returns_the_current_snapshot_once_at_its_latest_change(state: SimState) -> None:
    tenant = state.tenant(1)
    a, b, c = (tenant.create_job({}).id for _ in range(3))
    _, end = _drain(state, "jobs", None)
    tenant.update_job(a, {"jobStatus": "Completed"})
    tenant.update_job(b, {"active": False})
    tenant.update_job(a, {"jobStatus": "Canceled"})
    body = _export(state, "jobs", end)
    assert [(r["id"], r["jobStatus"], r["active"]) for r in body["data"]] == [
        (b, "Scheduled", False),
        (a, "Canceled", True),
    ]
    assert c not in [r["id"] for r in body["data"]]


def test_export_from_a_date_matches_modified_on(state: SimState) -> None:
    tenant = state.tenant(1)
    old = tenant.create_job({"createdOn": "2020-05-01T00:00:00Z"}).id
    new = tenant.create_job({}).id
    tenant.create_project({"createdOn": "2019-01-01T00:00:00Z", "modifiedOn": None})
    assert _drain(state, "jobs", "2025-12-31T00:00:00+00:00")[0] == [new]
    assert _drain(state, "jobs", "2020-01-01")[0] == [old, new]
    # A project with a null modifiedOn is placed by its createdOn.
    assert _drain(state, "projects", "2019-01-01")[0] != []
    assert _drain(state, "projects", "2019-01-02")[0] == []


def test_without_include_recent_changes_changes_show_after_the_delay(state: SimState, clock: Clock) -> None:
    tenant = state.tenant(1)
    job = tenant.create_job({}).id
    body = _export(state, "jobs", None, recent=False)
    assert body["data"] == [] and body["hasMore"] is False
    clock.advance(899)
    assert _export(state, "jobs", body["continueFrom"], recent=False)["data"] == []
    clock.advance(2)
    assert [r["id"] for r in _export(state, "jobs", body["continueFrom"], recent=False)["data"]] == [job]


def test_duplicate_rows_repeat_earlier_rows_but_lose_none(state: SimState) -> None:
    tenant = state.tenant(1)
    ids = [tenant.create_job({}).id for _ in range(20)]
    state.set_faults({"duplicate_rows": 0.5, "seed": 4})
    got, _ = _drain(state, "jobs", None)
    assert set(got) == set(ids)
    assert len(got) > len(ids)


def test_moving_a_job_updates_both_projects(state: SimState) -> None:
    tenant = state.tenant(1)
    p1, p2 = tenant.create_project({"name": "A"}), tenant.create_project({"name": "B"})
    job = tenant.create_job({"projectId": p1.id})
    assert p1.job_ids == [job.id] and job.customer_id == p1.customer_id
    tenant.update_job(job.id, {"projectId": p2.id})
    assert p1.job_ids == [] and p2.job_ids == [job.id]
    tenant.update_job(job.id, {"projectId": None})
    assert p2.job_ids == [] and job.project_id is None


def test_control_documents_are_checked(state: SimState) -> None:
    tenant = state.tenant(1)
    with pytest.raises(InputError) as caught:
        tenant.create_job({"projectId": 999})
    assert caught.value.field == "projectId"
    with pytest.raises(InputError):
        tenant.create_job({"colour": "red"})
    with pytest.raises(InputError):
        tenant.create_job({"jobStatus": "Lost"})
    job = tenant.create_job({"id": 5})
    with pytest.raises(InputError):
        tenant.create_job({"id": 5})
    assert tenant.create_job({}).id > job.id
    with pytest.raises(LookupError):
        tenant.update_job(404, {})
    with pytest.raises(InputError) as caught:
        tenant.bulk({"jobs": [{}, {"projectId": 999}]})
    assert caught.value.field == "jobs[1].projectId"


# ---------------------------------------------------------------------------- lists


def test_list_pages_filters_and_ids(state: SimState, clock: Clock) -> None:
    tenant = state.tenant(1)
    early = [tenant.create_job({}).id for _ in range(5)]
    clock.advance(60)
    late = [tenant.create_job({}).id for _ in range(5)]
    page = list_page(tenant, "jobs", {"pageSize": "4", "page": "3", "includeTotal": "true"})
    assert [r["id"] for r in page["data"]] == late[3:]
    assert (page["page"], page["pageSize"], page["hasMore"], page["totalCount"]) == (3, 4, False, 10)
    since = format_ticks(T0 + 30 * TICKS_PER_SECOND)
    assert [r["id"] for r in list_page(tenant, "jobs", {"modifiedOnOrAfter": since})["data"]] == late
    assert [r["id"] for r in list_page(tenant, "jobs", {"createdBefore": since})["data"]] == early
    assert [r["id"] for r in list_page(tenant, "jobs", {"sort": "-Id", "pageSize": "2"})["data"]] == late[:-3:-1]
    by_ids = list_page(tenant, "jobs", {"ids": f"{late[0]},{early[1]},999"})
    assert [r["id"] for r in by_ids["data"]] == [early[1], late[0]] and by_ids["totalCount"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"ids": ",".join(str(i) for i in range(51))}, "ids"),
        ({"pageSize": "5001"}, "pageSize"),
        ({"page": "0"}, "page"),
        ({"modifiedOnOrAfter": "yesterday"}, "modifiedOnOrAfter"),
        ({"sort": "+Colour"}, "sort"),
        ({"includeTotal": "maybe"}, "includeTotal"),
    ],
)
def test_list_refuses_bad_parameters(state: SimState, query: dict[str, str], field: str) -> None:
    with pytest.raises(InputError) as caught:
        list_page(state.tenant(1), "jobs", query)
    assert caught.value.field == field


def test_customers_list_is_active_only_unless_asked(state: SimState) -> None:
    tenant = state.tenant(1)
    live = tenant.create_customer({"name": "Maria Gonzalez"}).id
    gone = tenant.create_customer({"name": "Smith Residence", "active": False}).id
    ids = f"{live},{gone}"
    assert [r["id"] for r in list_page(tenant, "customers", {"ids": ids})["data"]] == [live]
    assert [r["id"] for r in list_page(tenant, "customers", {"ids": ids, "active": "Any"})["data"]] == [live, gone]
    assert [r["id"] for r in list_page(tenant, "customers", {"ids": ids, "active": "False"})["data"]] == [gone]


def test_list_cache_is_dropped_on_change(state: SimState) -> None:
    tenant = state.tenant(1)
    tenant.create_job({})
    assert len(list_page(tenant, "jobs", {})["data"]) == 1
    assert tenant.query_cache
    tenant.create_job({})
    assert len(list_page(tenant, "jobs", {})["data"]) == 2


# ---------------------------------------------------------------------------- faults, seed


def test_faults_refuse_unknown_names_and_bad_values() -> None:
    faults = Faults()
    faults.update({"error_rate": 0.5, "rate_limit_per_second": None, "retry_after": 2})
    assert faults.error_rate == 0.5 and faults.retry_after == 2.0
    for bad in ({"eror_rate": 1}, {"error_rate": 2}, {"latency": -1}, {"forbidden": 1}, {"error_status": 404}):
        with pytest.raises(ValueError):
            faults.update(bad)


def test_demo_seed_is_realistic_and_deterministic(clock: Clock) -> None:
    a, b = SimState(ServiceTitanSimOptions(clock=clock)), SimState(ServiceTitanSimOptions(clock=clock))
    summary = demo_seed(a, 1234567)
    demo_seed(b, 1234567)
    assert (summary["customers"], summary["projects"], summary["jobs"]) == (20, 8, 60)
    tenant = a.tenant(1234567)
    names = [c.name for c in tenant.customers.values()]
    assert any(n.endswith(" Residence") for n in names) and any(" LLC" in n or "Inc." in n for n in names)
    assert [p.name for p in tenant.projects.values()] == [p.name for p in b.tenant(1234567).projects.values()]
    assert all(isinstance(j.job_number, str) and j.job_number != str(j.id) for j in tenant.jobs.values())
    assert all(j.modified_on <= clock.now and j.created_on <= j.modified_on for j in tenant.jobs.values())
    for project in tenant.projects.values():
        assert all(tenant.jobs[j].project_id == project.id for j in project.job_ids)


def test_random_source_is_seedable() -> None:
    rolls = []
    for _ in range(2):
        state = SimState(ServiceTitanSimOptions(seed=9))
        rolls.append([state.rng.random() for _ in range(3)])
    assert rolls[0] == rolls[1]
    assert random.Random(9).random() == rolls[0][0]
