"""The ServiceTitan simulator over HTTP: token endpoint, credentials, control API, command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulators.servicetitan import ServiceTitanSimOptions, SimState, load_seed_file
from tests.plugins.simulators import ServiceTitanSim, ServiceTitanSimFactory

ROOT = Path(__file__).resolve().parents[2]
TOKEN_FORM = {"grant_type": "client_credentials", "client_id": "cid.a", "client_secret": "cs1.b"}


async def _token(http: aiohttp.ClientSession, url: str, **form: str) -> tuple[int, Any]:
    async with http.post(url, data=TOKEN_FORM | form) as resp:
        return resp.status, await resp.json()


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, **headers: str
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


# ---------------------------------------------------------------------------- token endpoint


async def test_token_answer_has_the_oauth_shape(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    status, body = await _token(servicetitan_http, servicetitan_sim.auth_url)
    assert status == 200
    assert set(body) == {"access_token", "expires_in", "token_type", "scope"}
    assert body["expires_in"] == 900 and body["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"scope": "openid offline_access"}, "invalid_scope"),
        ({"client_secret": ""}, "invalid_client"),
    ],
)
async def test_token_endpoint_refusals(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession, form: dict[str, str], error: str
) -> None:
    assert await _token(servicetitan_http, servicetitan_sim.auth_url, **form) == (400, {"error": error})


async def test_enforced_credentials(
    make_servicetitan_sim: ServiceTitanSimFactory, servicetitan_http: aiohttp.ClientSession
) -> None:
    sim = await make_servicetitan_sim(ServiceTitanSimOptions(client_id="cid.a", client_secret="cs1.b", app_key="ak1.c"))
    assert (await _token(servicetitan_http, sim.auth_url, client_secret="nope"))[0] == 400
    status, body = await _token(servicetitan_http, sim.auth_url)
    assert status == 200
    jobs = f"{sim.base_url}/jpm/v2/tenant/42/jobs"
    bearer = f"Bearer {body['access_token']}"
    assert (await _call(servicetitan_http, "GET", jobs, Authorization=bearer, **{"ST-App-Key": "ak1.c"}))[0] == 200
    # A raw token without "Bearer " works too, as with ServiceTitan.
    raw = body["access_token"]
    assert (await _call(servicetitan_http, "GET", jobs, Authorization=raw, **{"ST-App-Key": "ak1.c"}))[0] == 200
    for headers in (
        {"Authorization": bearer},
        {"Authorization": bearer, "ST-App-Key": "ak1.x"},
        {"ST-App-Key": "ak1.c"},
    ):
        status, problem = await _call(servicetitan_http, "GET", jobs, **headers)
        assert status == 401 and problem["status"] == 401 and problem["traceId"]
    # Credentials can change at run time; null accepts any value again.
    status, _ = await _call(
        servicetitan_http, "PUT", sim.control_url("/_sim/credentials"), {"client_secret": "cs1.new"}
    )
    assert status == 200
    assert (await _token(servicetitan_http, sim.auth_url))[0] == 400
    assert (await _token(servicetitan_http, sim.auth_url, client_secret="cs1.new"))[0] == 200
    await _call(servicetitan_http, "PUT", sim.control_url("/_sim/credentials"), {"client_secret": None})
    assert (await _token(servicetitan_http, sim.auth_url, client_secret="anything"))[0] == 200


async def test_expired_tokens_are_refused(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    _, body = await _token(servicetitan_http, servicetitan_sim.auth_url)
    headers = {"Authorization": f"Bearer {body['access_token']}", "ST-App-Key": "ak1.c"}
    url = f"{servicetitan_sim.base_url}/jpm/v2/tenant/1/projects"
    assert (await _call(servicetitan_http, "GET", url, **headers))[0] == 200
    status, expired = await _call(servicetitan_http, "POST", servicetitan_sim.control_url("/_sim/expire-tokens"))
    assert (status, expired) == (200, {"expired": 1})
    assert (await _call(servicetitan_http, "GET", url, **headers))[0] == 401


async def test_unknown_paths_answer_with_a_problem(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    status, body = await _call(servicetitan_http, "GET", f"{servicetitan_sim.base_url}/jpm/v2/tenant/1/nothing")
    assert status == 404 and body["status"] == 404


# ---------------------------------------------------------------------------- control API


async def test_control_api_round_trip(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    base = servicetitan_sim.control_url("/_sim/tenant/555")
    status, customer = await _call(servicetitan_http, "POST", f"{base}/customers", {"name": "Maria Gonzalez"})
    assert status == 201 and customer["name"] == "Maria Gonzalez"
    status, project = await _call(
        servicetitan_http,
        "POST",
        f"{base}/projects",
        {"name": "Riverside Office HVAC Retrofit", "customerId": customer["id"]},
    )
    assert status == 201 and project["number"] and project["active"] is True
    status, job = await _call(
        servicetitan_http, "POST", f"{base}/jobs", {"projectId": project["id"], "jobNumber": "J1"}
    )
    assert status == 201 and job["customerId"] == customer["id"]
    status, shown = await _call(servicetitan_http, "GET", f"{base}/projects/{project['id']}")
    assert shown["jobIds"] == [job["id"]]
    status, renamed = await _call(servicetitan_http, "PATCH", f"{base}/projects/{project['id']}", {"name": "Renamed"})
    assert status == 200 and renamed["name"] == "Renamed" and renamed["modifiedOn"] > project["modifiedOn"]
    status, moved = await _call(
        servicetitan_http, "PATCH", f"{base}/jobs/{job['id']}", {"projectId": None, "active": False}
    )
    assert status == 200 and moved["projectId"] is None and moved["active"] is False
    status, _ = await _call(servicetitan_http, "PATCH", f"{base}/customers/{customer['id']}", {"name": "M. Gonzalez"})
    assert status == 200
    status, summary = await _call(servicetitan_http, "GET", f"{base}/summary")
    assert (summary["customers"], summary["projects"], summary["jobs"], summary["job_changes"]) == (1, 1, 1, 2)
    status, tenants = await _call(servicetitan_http, "GET", servicetitan_sim.control_url("/_sim/tenants"))
    assert [t["tenant"] for t in tenants] == [555]


async def test_control_api_errors(servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession) -> None:
    base = servicetitan_sim.control_url("/_sim/tenant/1")
    status, body = await _call(servicetitan_http, "POST", f"{base}/jobs", {"projectId": 4})
    assert status == 400 and body["field"] == "projectId"
    assert (await _call(servicetitan_http, "PATCH", f"{base}/jobs/4", {"active": False}))[0] == 404
    assert (await _call(servicetitan_http, "GET", f"{base}/customers/4"))[0] == 404
    status, body = await _call(servicetitan_http, "PUT", servicetitan_sim.control_url("/_sim/faults"), {"eror_rate": 1})
    assert status == 400 and "unknown fault" in body["error"]


async def test_bulk_seeding(servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession) -> None:
    body = {
        "customers": [{"name": f"Customer {i}"} for i in range(10)],
        "projects": [{"name": f"Project {i}", "customerId": 10_001 + i} for i in range(10)],
        "jobs": [{"projectId": 50_001 + i % 10, "jobNumber": str(30_000 + i)} for i in range(2000)],
    }
    status, created = await _call(servicetitan_http, "POST", servicetitan_sim.control_url("/_sim/tenant/9/bulk"), body)
    assert status == 201
    assert created["jobs"] == {"count": 2000, "first_id": 100_001, "last_id": 102_000}
    assert len(servicetitan_sim.state.tenant(9).projects[50_001].job_ids) == 200


async def test_faults_stats_and_requests(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    faults_url = servicetitan_sim.control_url("/_sim/faults")
    status, faults = await _call(servicetitan_http, "PUT", faults_url, {"latency": 0.01, "seed": 3})
    assert status == 200 and faults["latency"] == 0.01 and faults["error_rate"] == 0.0
    assert (await _call(servicetitan_http, "GET", faults_url))[1]["latency"] == 0.01
    _, token = await _token(servicetitan_http, servicetitan_sim.auth_url)
    headers = {"Authorization": f"Bearer {token['access_token']}", "ST-App-Key": "ak1.c"}
    await _call(servicetitan_http, "GET", f"{servicetitan_sim.base_url}/jpm/v2/tenant/1/jobs?sort=%2BId", **headers)
    _, stats = await _call(servicetitan_http, "GET", servicetitan_sim.control_url("/_sim/stats"))
    assert stats["requests"]["api.jobs.list"] == 1 and stats["tokens_issued"] == 1 and stats["statuses"] == {"200": 1}
    _, recent = await _call(servicetitan_http, "GET", servicetitan_sim.control_url("/_sim/requests?limit=5"))
    assert recent[-1]["query"] == "sort=%2BId"
    assert (await _call(servicetitan_http, "DELETE", faults_url))[1]["latency"] == 0.0
    _, stats = await _call(servicetitan_http, "DELETE", servicetitan_sim.control_url("/_sim/stats"))
    assert stats["tokens_issued"] == 0


def test_seed_file_loads_into_tenants(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({"tenants": {"77": {"customers": [{"name": "Acme"}], "jobs": [{"customerId": 10001}]}}}))
    state = SimState()
    assert [s["jobs"] for s in load_seed_file(state, path, 1)] == [1]
    path.write_text(json.dumps({"projects": [{"name": "Cedar Park Clinic Ductwork Repair"}]}))
    assert load_seed_file(state, path, 88)[0]["projects"] == 1


# ---------------------------------------------------------------------------- command line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_command_line_serves_seeded_data_with_enforced_credentials(
    servicetitan_http: aiohttp.ClientSession,
) -> None:
    port = _free_port()
    args = [
        "--port",
        str(port),
        "--seed",
        "demo",
        "--client-id",
        "cid.a",
        "--client-secret",
        "cs1.b",
        "--app-key",
        "ak1.c",
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.servicetitan", *args,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                status, body = await _token(servicetitan_http, f"{base}/connect/token")
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the simulator did not start")
        assert status == 200
        assert (await _token(servicetitan_http, f"{base}/connect/token", client_id="cid.z"))[0] == 400
        headers = {"Authorization": f"Bearer {body['access_token']}", "ST-App-Key": "ak1.c"}
        status, page = await _call(
            servicetitan_http,
            "GET",
            f"{base}/jpm/v2/tenant/1234567/export/jobs?from=2000-01-01&includeRecentChanges=true",
            **headers,
        )
        assert status == 200 and len(page["data"]) == 60
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, stderr.decode()
