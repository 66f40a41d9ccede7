"""Every simulator answer the daemon reads validates against ServiceTitan's own OpenAPI schemas.

The documents (tests/fixtures/servicetitan/) are OpenAPI 3.1, whose schemas are JSON Schema
2020-12; ``$ref``s resolve within the document. Times are checked separately by pattern (the
``date-time`` format is not asserted by jsonschema without extra packages).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator

from simulators.servicetitan import demo_seed
from tests.plugins.simulators import ServiceTitanSim

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "servicetitan"
TENANT = 1234567
SEVEN_DIGITS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")
TIME_FIELDS = {"createdOn", "modifiedOn", "completedOn", "startDate", "targetCompletionDate", "actualCompletionDate"}


@cache
def _spec(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _validator(doc: str, ref: str) -> Draft202012Validator:
    schema = {"$ref": ref, "components": _spec(doc)["components"]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _response_ref(doc: str, path: str, status: str = "200") -> str:
    content = _spec(doc)["paths"][path]["get"]["responses"][status]["content"]["application/json"]
    return str(content["schema"]["$ref"])


def _check(doc: str, ref: str, body: Any) -> None:
    errors = sorted(_validator(doc, ref).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    _check_times(body)


def _check_times(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in TIME_FIELDS and value is not None:
                assert SEVEN_DIGITS.match(value), f"{key}={value!r}"
            _check_times(value)
    elif isinstance(node, list):
        for item in node:
            _check_times(item)


@pytest.fixture
async def seeded(servicetitan_sim: ServiceTitanSim) -> ServiceTitanSim:
    demo_seed(servicetitan_sim.state, TENANT)
    # Edge cases beside the demo data: a project with a null modifiedOn, an inactive job,
    # a job without a project, a completed job, a commercial customer.
    servicetitan_sim.create_project(name=None, createdOn="2021-07-19T20:35:38.2876004Z", modifiedOn=None)
    servicetitan_sim.create_job(active=False, jobStatus="Completed", completedOn="2021-07-20T10:00:00Z")
    servicetitan_sim.create_customer(name="Acme Property Management LLC", type="Commercial")
    return servicetitan_sim


class Api:
    """Authenticated GETs against the simulator, returning status and JSON."""

    def __init__(self, sim: ServiceTitanSim, http: aiohttp.ClientSession) -> None:
        self.sim, self.http = sim, http
        self.token = ""

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        if not self.token:
            form = {"grant_type": "client_credentials", "client_id": "cid.x", "client_secret": "cs1.x"}
            async with self.http.post(self.sim.auth_url, data=form) as resp:
                self.token = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {self.token}", "ST-App-Key": "ak1.x"}
        async with self.http.get(f"{self.sim.base_url}{path}", params=params, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
def api(seeded: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession) -> Api:
    return Api(seeded, servicetitan_http)


JPM = f"/jpm/v2/tenant/{TENANT}"
CRM = f"/crm/v2/tenant/{TENANT}"


@pytest.mark.parametrize("feed", ["jobs", "projects"])
@pytest.mark.parametrize("recent", ["true", "false"])
async def test_export_pages_match_the_spec(api: Api, feed: str, recent: str) -> None:
    api.sim.set_faults(export_page_size=25, recent_changes_delay=0, duplicate_rows=0.2)
    ref = _response_ref("jpm-v2.json", f"/tenant/{{tenant}}/export/{feed}")
    position, pages = "2000-01-01", 0
    while True:
        status, body = await api.get(f"{JPM}/export/{feed}", **{"from": position, "includeRecentChanges": recent})
        assert status == 200
        _check("jpm-v2.json", ref, body)
        assert all("active" in row for row in body["data"])
        pages += 1
        position = body["continueFrom"]
        if not body["hasMore"]:
            break
    assert pages >= 2 if feed == "jobs" else pages >= 1


@pytest.mark.parametrize("resource", ["jobs", "projects"])
async def test_gets_and_lists_match_the_spec(api: Api, resource: str) -> None:
    records = getattr(api.sim.tenant(), resource)
    for record_id in list(records)[:5] + list(records)[-2:]:
        status, body = await api.get(f"{JPM}/{resource}/{record_id}")
        assert status == 200
        _check("jpm-v2.json", _response_ref("jpm-v2.json", f"/tenant/{{tenant}}/{resource}/{{id}}"), body)
        assert "active" not in body  # only export rows carry it (additionalProperties is false)
    list_ref = _response_ref("jpm-v2.json", f"/tenant/{{tenant}}/{resource}")
    for params in (
        {},
        {"pageSize": "7", "page": "2", "includeTotal": "true"},
        {"ids": ",".join(map(str, list(records)[:20]))},
    ):
        status, body = await api.get(f"{JPM}/{resource}", **params)
        assert status == 200 and body["data"]
        _check("jpm-v2.json", list_ref, body)


async def test_customers_match_the_spec(api: Api) -> None:
    customers = api.sim.tenant().customers
    first = next(iter(customers))
    status, body = await api.get(f"{CRM}/customers/{first}")
    assert status == 200
    _check("crm-v2.json", _response_ref("crm-v2.json", "/tenant/{tenant}/customers/{id}"), body)
    status, body = await api.get(f"{CRM}/customers", ids=",".join(map(str, list(customers)[:50])), active="Any")
    assert status == 200 and len(body["data"]) == min(50, len(customers))
    _check("crm-v2.json", _response_ref("crm-v2.json", "/tenant/{tenant}/customers"), body)


async def test_declared_errors_match_the_spec(api: Api) -> None:
    cases = [
        (f"{JPM}/jobs/999999", {}, "jpm-v2.json", "/tenant/{tenant}/jobs/{id}", "404"),
        (f"{JPM}/projects/999999", {}, "jpm-v2.json", "/tenant/{tenant}/projects/{id}", "404"),
        (f"{CRM}/customers/999999", {}, "crm-v2.json", "/tenant/{tenant}/customers/{id}", "404"),
        (f"{JPM}/jobs", {"ids": ",".join(str(i) for i in range(51))}, "jpm-v2.json", "/tenant/{tenant}/jobs", "400"),
        (f"{JPM}/export/jobs", {"from": "last tuesday"}, "jpm-v2.json", "/tenant/{tenant}/export/jobs", "400"),
    ]
    for path, params, doc, spec_path, expected in cases:
        status, body = await api.get(path, **params)
        assert str(status) == expected, (path, body)
        _check(doc, _response_ref(doc, spec_path, expected), body)
        assert body["status"] == status and body["title"]


@pytest.mark.parametrize(
    ("faults", "status"),
    [
        ({"rate_limit_next": 1, "retry_after": 3}, 429),
        ({"error_next": 1}, 503),
        ({"forbidden": True}, 403),
        ({"timeout_next": 1, "hang_seconds": 0.01}, 504),
    ],
)
async def test_fault_answers_use_the_error_schema(api: Api, faults: dict[str, Any], status: int) -> None:
    api.sim.set_faults(**faults)
    got, body = await api.get(f"{JPM}/jobs")
    assert got == status
    _check("jpm-v2.json", "#/components/schemas/ApiErrorResponse", body)
    if status == 429:
        assert body["title"].endswith("Try again in 3 seconds.")


async def test_unauthorized_uses_the_error_schema(api: Api) -> None:
    await api.get(f"{JPM}/jobs")
    api.sim.expire_tokens()
    status, body = await api.get(f"{JPM}/jobs")
    assert status == 401
    _check("jpm-v2.json", "#/components/schemas/ApiErrorResponse", body)


def test_the_validator_catches_wrong_shapes() -> None:
    ref = _response_ref("jpm-v2.json", "/tenant/{tenant}/jobs/{id}")
    validator = _validator("jpm-v2.json", ref)
    example = _spec("jpm-v2.json")["paths"]["/tenant/{tenant}/jobs/{id}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["example"]
    assert validator.is_valid(example)
    assert not validator.is_valid({**example, "active": True})  # list and get rows have no `active`
    assert not validator.is_valid({**example, "customerPo": None})
    assert not validator.is_valid({k: v for k, v in example.items() if k != "jobNumber"})
    assert not validator.is_valid({**example, "customFields": [{"typeId": 1, "name": "x"}]})
