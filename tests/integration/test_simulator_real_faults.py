"""The simulators' failure modes of real services, switched through their ``/_sim/`` control APIs.

Each mode is set over HTTP as an outside check would, then met by the real adapter.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from adapters.errors import ConnectionFailure, TransientError
from adapters.intacct import CreateProject, IntacctClient, Outcome
from adapters.servicetitan import ServiceTitanClient
from tests.plugins.simulators import IntacctSim, ServiceTitanSim


async def control(http: aiohttp.ClientSession, url: str, method: str = "PUT", body: Any = None) -> Any:
    async with http.request(method, url, json=body) as response:
        assert response.status < 300, await response.text()
        return await response.json() if response.content_type == "application/json" else None


def create(n: int) -> CreateProject:
    return CreateProject(f"job-{n}-v1", {"PROJECTID": f"J-{n}", "NAME": f"Job {n}", "PROJECTCATEGORY": "Contract"})


def ia_client(sim: IntacctSim, http: aiohttp.ClientSession, **options: Any) -> IntacctClient:
    return IntacctClient(http, sim.credentials(), request_timeout=5.0, **options)


# -- Intacct ------------------------------------------------------------------------------------------


async def test_html_200_page(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    client = ia_client(intacct_sim, intacct_http)
    await client.probe()  # a session first: the page then meets a request carrying functions
    await control(intacct_http, intacct_sim.control_url("/_sim/faults"), body={"html_200_rate": 1.0})
    with pytest.raises(TransientError, match="incomplete response") as info:
        await client.execute([create(1)])
    assert info.value.outcome_unknown
    assert intacct_sim.projects() == {}  # nothing applied
    assert intacct_sim.state.stats.faults["html_200"] == 1


async def test_cut_off_after_the_functions_ran(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    client = ia_client(intacct_sim, intacct_http)
    await client.probe()
    await control(intacct_http, intacct_sim.control_url("/_sim/faults"), body={"cut_off_rate": 1.0})
    with pytest.raises(TransientError, match="incomplete response") as info:
        await client.execute([create(2)])
    assert info.value.outcome_unknown
    assert "J-2" in intacct_sim.projects()  # applied: the caller must read it back before resending


@pytest.mark.parametrize("wording", ["invalid_session", "sign_in_incorrect", "empty_userid", "http_401"])
async def test_session_death_in_each_wording(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession, wording: str
) -> None:
    client = ia_client(intacct_sim, intacct_http)
    await client.execute([create(3)])
    faults = {"session_death": wording, "expire_sessions_now": True}
    await control(intacct_http, intacct_sim.control_url("/_sim/faults"), body=faults)
    [result] = await client.execute([create(4)])
    assert result.outcome is Outcome.SUCCESS
    stats = intacct_sim.state.stats
    assert stats.auth_failures == 1  # the dead session, once; then a new login and the resend
    assert stats.functions["getAPISession"] == 2
    assert set(intacct_sim.projects()) == {"J-3", "J-4"}


async def test_sessions_without_timeout_are_renewed_before_a_silent_death(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession
) -> None:
    await control(
        intacct_http,
        intacct_sim.control_url("/_sim/faults"),
        body={"announce_session_timeout": False, "session_max_age": 0.6},
    )
    client = ia_client(intacct_sim, intacct_http, session_max_age=0.3)
    for n in range(5):
        [result] = await client.execute([create(10 + n)])
        assert result.outcome is Outcome.SUCCESS
        await asyncio.sleep(0.2)
    assert intacct_sim.state.stats.auth_failures == 0  # renewed in time, never refused
    assert intacct_sim.state.stats.functions["getAPISession"] >= 3


async def test_dl02000001(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    client = ia_client(intacct_sim, intacct_http)
    await control(intacct_http, intacct_sim.control_url("/_sim/faults"), body={"dl02000001_rate": 1.0})
    [result] = await client.execute([create(5)])
    assert result.outcome is Outcome.TRANSIENT and result.error_fields["errorno"] == "DL02000001"
    assert intacct_sim.projects() == {}


async def test_redirect(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    client = ia_client(intacct_sim, intacct_http)
    await control(intacct_http, intacct_sim.control_url("/_sim/faults"), body={"redirect_rate": 1.0})
    with pytest.raises(ConnectionFailure, match="maintenance.invalid"):
        await client.execute([create(6)])


async def test_oversized_body(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    client = ia_client(intacct_sim, intacct_http, max_body_bytes=1_000_000)
    await client.probe()
    await control(
        intacct_http, intacct_sim.control_url("/_sim/faults"), body={"oversize_rate": 1.0, "oversize_bytes": 3_000_000}
    )
    with pytest.raises(TransientError, match="exceeds 1000000 bytes") as info:
        await client.execute([create(7)])
    assert info.value.outcome_unknown
    assert "J-7" in intacct_sim.projects()


async def test_the_default_oversize_exceeds_the_adapters_cap(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession
) -> None:
    client = ia_client(intacct_sim, intacct_http)
    await client.probe()
    await control(intacct_http, intacct_sim.control_url("/_sim/faults"), body={"oversize_rate": 1.0})
    with pytest.raises(TransientError, match="exceeds 67108864 bytes"):
        await client.execute([create(8)])


async def test_unknown_wording_is_refused(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    async with intacct_http.put(intacct_sim.control_url("/_sim/faults"), json={"session_death": "poetry"}) as r:
        assert r.status == 400


# -- ServiceTitan -------------------------------------------------------------------------------------


async def test_token_redirect(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient, servicetitan_http: aiohttp.ClientSession
) -> None:
    await control(servicetitan_http, servicetitan_sim.control_url("/_sim/faults"), body={"token_redirect_next": 1})
    with pytest.raises(ConnectionFailure, match="elsewhere.invalid"):
        await servicetitan_client.probe()
    assert servicetitan_sim.stats.tokens_issued == 0


async def test_api_redirect(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient, servicetitan_http: aiohttp.ClientSession
) -> None:
    job = servicetitan_sim.create_job()
    await control(servicetitan_http, servicetitan_sim.control_url("/_sim/faults"), body={"redirect_next": 1})
    with pytest.raises(ConnectionFailure, match="elsewhere.invalid"):
        await servicetitan_client.get_job(job.id)
    assert (await servicetitan_client.get_job(job.id)).id == job.id  # one redirect only


async def test_oversized_page(servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession) -> None:
    client = ServiceTitanClient(
        servicetitan_http, servicetitan_sim.credentials(), max_page_bytes=1_000_000, max_retries=0
    )
    await control(
        servicetitan_http,
        servicetitan_sim.control_url("/_sim/faults"),
        body={"oversize_next": 1, "oversize_bytes": 3_000_000},
    )
    with pytest.raises(TransientError, match="exceeds 1000000 bytes"):
        async for _ in client.export_jobs("2020-01-01T00:00:00Z"):
            pass


async def test_hostile_export_rows(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient, servicetitan_http: aiohttp.ClientSession
) -> None:
    good = servicetitan_sim.create_job()
    hostile = [
        '{"id": ' + "9" * 5000 + ', "createdOn": "2026-01-01T00:00:00Z"}',
        '{"id": 9223372036854775808, "createdOn": "2026-01-01T00:00:00Z"}',
        '{"id": 77, "customerId": ' + "1" * 5000 + ', "createdOn": "2026-01-01T00:00:00Z"}',
        '{"id": 78}',
    ]
    url = servicetitan_sim.control_url(f"/_sim/tenant/{servicetitan_sim.tenant_id}/hostile-rows")
    await control(servicetitan_http, url, "POST", {"feed": "jobs", "rows": hostile})
    pages = [page async for page in servicetitan_client.export_jobs("2020-01-01T00:00:00Z")]
    assert [job.id for page in pages for job in page.rows] == [good.id]
    rejected = [row for page in pages for row in page.rejected]
    assert [row.id for row in rejected[1:]] == ["9223372036854775808", "77", "78"]
    assert rejected[0].id is not None and rejected[0].id.startswith("999") and len(rejected[0].id) <= 41
    assert "'id' is not an integer" in rejected[0].reason
    assert servicetitan_sim.stats.hostile_rows_sent == 4
    again = [row for page in [p async for p in servicetitan_client.export_jobs("2020-01-01T00:00:00Z")]
             for row in page.rejected]
    assert again == []  # served once
