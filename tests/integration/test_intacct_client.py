"""IntacctClient against the Intacct simulator on loopback: sessions, batching, limits and faults."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections import Counter

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from adapters.errors import ConnectionFailure, TransientError
from adapters.intacct import CreateProject, Function, IntacctClient, Outcome, QueryProjects, ReadProjects, UpdateProject
from simulators.intacct import IntacctSimOptions
from tests.plugins.simulators import IntacctSim, IntacctSimFactory


def create(n: int | str, **fields: str | None) -> CreateProject:
    values: dict[str, str | None] = {"PROJECTID": f"J-{n}", "NAME": f"Job {n}", "PROJECTCATEGORY": "Contract"}
    values.update(fields)
    return CreateProject(f"job-{n}-v1", values)


class Outcomes:
    """An observer that records what the client reports per HTTP request."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.seen.append(outcome)


async def wait_idle(sim: IntacctSim) -> None:
    """Let requests the client abandoned finish inside the simulator."""
    for _ in range(200):
        if sim.state.stats.in_flight == 0:
            return
        await asyncio.sleep(0.02)


async def test_batch_of_creates_in_one_request(intacct_sim: IntacctSim, intacct_client: IntacctClient) -> None:
    functions = [create(i, CUSTOMERID="C1" if i % 2 else None) for i in range(50)]
    results = await intacct_client.execute(functions)
    assert [r.controlid for r in results] == [f.controlid for f in functions]
    assert all(r.outcome is Outcome.SUCCESS for r in results)
    assert results[7].projects[0].project_id == "J-7" and results[7].projects[0].record_no == 8
    stats = intacct_sim.state.stats
    assert (stats.requests, stats.session_requests, stats.functions["create"]) == (2, 1, 50)
    assert intacct_sim.projects()["J-1"]["CUSTOMERID"] == "C1"
    assert intacct_sim.projects()["J-2"]["CUSTOMERID"] is None


async def test_mixed_results_in_one_request(intacct_sim: IntacctSim, intacct_client: IntacctClient) -> None:
    await intacct_client.execute([create(1)])
    results = await intacct_client.execute(
        [
            create(1),  # duplicate
            create(2, CUSTOMERID="NOPE"),
            UpdateProject("u-3", "J-3", {"NAME": "x"}),
            UpdateProject("u-1", "J-1", {"NAME": "Renamed"}),
            create(4, PARENTID="J-1"),
        ]
    )
    assert [r.outcome for r in results] == [
        Outcome.ALREADY_EXISTS,
        Outcome.PERMANENT,
        Outcome.NOT_EXISTING,
        Outcome.SUCCESS,
        Outcome.SUCCESS,
    ]
    assert results[1].error_fields["description2"] == "Customer 'NOPE' specified is not valid."
    assert results[2].errors[0].errorno == "Cannot update non-existing PROJECT with PROJECTID=J-3."
    assert intacct_sim.projects()["J-1"]["NAME"] == "Renamed"


async def test_session_endpoint_is_used(
    make_intacct_sim: IntacctSimFactory, aiohttp_server: AiohttpServer, intacct_http: aiohttp.ClientSession
) -> None:
    sim = await make_intacct_sim()
    seen: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        seen.append(request.path)
        async with intacct_http.post(sim.url, data=await request.read()) as upstream:
            return web.Response(body=await upstream.read(), status=upstream.status, content_type="text/xml")

    proxy_app = web.Application()
    proxy_app.router.add_post("/elsewhere/na12/xmlgw.phtml", forward)
    proxy = await aiohttp_server(proxy_app, host="127.0.0.1")
    sim.state.session_endpoint = str(proxy.make_url("/elsewhere/na12/xmlgw.phtml"))
    client = IntacctClient(intacct_http, sim.credentials())
    await client.execute([create(1)])
    await client.read_projects(["J-1"])
    await client.probe()
    assert seen == ["/elsewhere/na12/xmlgw.phtml"] * 3
    assert sim.state.stats.requests == 4  # the login went to endpoint_url itself


async def test_results_matched_by_controlid_when_reordered(
    intacct_sim: IntacctSim, aiohttp_server: AiohttpServer, intacct_http: aiohttp.ClientSession
) -> None:
    async def reverse(request: web.Request) -> web.Response:
        async with intacct_http.post(intacct_sim.url, data=await request.read()) as upstream:
            root = ET.fromstring(await upstream.read())
        operation = root.find("operation")
        if operation is not None:
            results = operation.findall("result")
            for result in results:
                operation.remove(result)
            operation.extend(reversed(results))
        return web.Response(body=ET.tostring(root), content_type="text/xml")

    app = web.Application()
    app.router.add_post("/gw", reverse)
    server = await aiohttp_server(app, host="127.0.0.1")
    intacct_sim.state.session_endpoint = str(server.make_url("/gw"))
    client = IntacctClient(intacct_http, intacct_sim.credentials())
    functions: list[Function] = [create(1), create(2, CUSTOMERID="NOPE"), ReadProjects("r", ["J-1", "J-9"]), create(3)]
    results = await client.execute(functions)
    assert [r.controlid for r in results] == ["job-1-v1", "job-2-v1", "r", "job-3-v1"]
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.PERMANENT, Outcome.SUCCESS, Outcome.SUCCESS]
    assert [p.project_id for p in results[2].projects] == ["J-1"]


async def test_concurrency_cap_holds_across_callers(
    make_intacct_sim: IntacctSimFactory, intacct_http: aiohttp.ClientSession
) -> None:
    sim = await make_intacct_sim(IntacctSimOptions(max_concurrent=None, latency=0.03))
    client = IntacctClient(intacct_http, sim.credentials(), max_concurrent_requests=2)
    results = await asyncio.gather(*(client.execute([create(i)]) for i in range(10)))
    assert all(r[0].outcome is Outcome.SUCCESS for r in results)
    assert sim.state.stats.max_in_flight <= 2
    assert client.max_in_flight_seen == 2 and client.in_flight == 0
    assert sim.state.stats.session_requests == 1  # concurrent callers shared one login


async def test_invalid_session_renews_and_resends_once(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession
) -> None:
    outcomes = Outcomes()
    client = IntacctClient(intacct_http, intacct_sim.credentials(), observer=outcomes)
    await client.execute([create(1)])
    intacct_sim.state.expire_sessions()
    [result] = await client.execute([create(2)])
    assert result.outcome is Outcome.SUCCESS
    assert outcomes.seen == ["ok", "ok", "invalid_session", "ok", "ok"]
    assert intacct_sim.state.stats.session_requests == 2
    assert intacct_sim.state.stats.creates_applied == 2


async def test_second_invalid_session_is_transient(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession
) -> None:
    intacct_sim.set_faults(session_max_age=0.000001)  # every session is dead by its first use
    outcomes = Outcomes()
    client = IntacctClient(intacct_http, intacct_sim.credentials(), observer=outcomes)
    with pytest.raises(TransientError) as info:
        await client.execute([create(1)])
    assert info.value.outcome_unknown is False
    assert outcomes.seen == ["ok", "invalid_session", "ok", "invalid_session"]
    assert intacct_sim.state.stats.creates_applied == 0


async def test_sliding_expiry_keeps_then_renews_the_session(
    make_intacct_sim: IntacctSimFactory, intacct_http: aiohttp.ClientSession
) -> None:
    sim = await make_intacct_sim(IntacctSimOptions(session_ttl=1.5))
    outcomes = Outcomes()
    client = IntacctClient(intacct_http, sim.credentials(), observer=outcomes)
    for _ in range(6):  # 1.8 s of use, longer than the TTL: the expiry slides
        await client.probe()
        await asyncio.sleep(0.3)
    assert sim.state.stats.session_requests == 1
    await asyncio.sleep(1.6)  # idle past the announced expiry: renewed before use, never refused
    await client.probe()
    assert sim.state.stats.session_requests == 2
    assert "invalid_session" not in outcomes.seen


async def test_lost_answer_then_read_finds_the_project(intacct_sim: IntacctSim, intacct_client: IntacctClient) -> None:
    await intacct_client.probe()  # the session first: a lost login answer would be another story
    intacct_sim.set_faults(lost_answer_rate=1.0)
    with pytest.raises(TransientError) as info:
        await intacct_client.execute([create(1)])
    assert info.value.outcome_unknown is True and info.value.status == 502
    intacct_sim.set_faults(lost_answer_rate=0.0)
    found = await intacct_client.read_projects(["J-1", "J-2"])
    assert list(found) == ["J-1"]  # the create happened: update it, never create again
    [again] = await intacct_client.execute([create(1)])
    assert again.outcome is Outcome.ALREADY_EXISTS
    assert intacct_sim.state.stats.creates_applied == 1 and len(intacct_sim.projects()) == 1


async def test_timeout_is_transient_with_unknown_outcome(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession
) -> None:
    outcomes = Outcomes()
    client = IntacctClient(intacct_http, intacct_sim.credentials(), request_timeout=0.3, observer=outcomes)
    await client.probe()
    intacct_sim.set_faults(timeout_rate=1.0, hang_seconds=0.5)
    with pytest.raises(TransientError, match="timed out") as info:
        await client.execute([create(1)])
    assert info.value.outcome_unknown is True
    assert outcomes.seen[-1] == "transient_error"
    await wait_idle(intacct_sim)
    assert intacct_sim.state.stats.faults["timeout"] == 1


async def test_http_5xx_is_transient_and_applies_nothing(
    intacct_sim: IntacctSim, intacct_client: IntacctClient
) -> None:
    await intacct_client.probe()
    intacct_sim.set_faults(error_rate=1.0)
    statuses = set()
    for i in range(6):
        with pytest.raises(TransientError) as info:
            await intacct_client.execute([create(i)])
        assert info.value.outcome_unknown is True
        statuses.add(info.value.status)
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    assert intacct_sim.state.stats.creates_applied == 0


async def test_rate_limit_is_transient_with_retry_after(intacct_sim: IntacctSim, intacct_client: IntacctClient) -> None:
    intacct_sim.set_faults(rate_limit_rate=1.0, retry_after=2.5)
    with pytest.raises(TransientError) as info:
        await intacct_client.probe()
    assert (info.value.outcome_unknown, info.value.retry_after, info.value.status) == (False, 2.5, 429)
    assert info.value.errorno == "GW-0010"


async def test_http_401_is_a_connection_failure(intacct_sim: IntacctSim, intacct_client: IntacctClient) -> None:
    intacct_sim.set_faults(http_401_rate=1.0)
    with pytest.raises(ConnectionFailure) as info:
        await intacct_client.execute([create(1)])
    assert (info.value.status, info.value.errorno) == (401, "XMLGW_JPP0002")


@pytest.mark.parametrize("level", ["control", "function"])
async def test_company_concurrency_limit_is_transient(
    make_intacct_sim: IntacctSimFactory, intacct_http: aiohttp.ClientSession, level: str
) -> None:
    sim = await make_intacct_sim(IntacctSimOptions(max_concurrent=1, concurrency_wait=0.05))
    sim.set_faults(concurrency_error_level=level)
    client = IntacctClient(intacct_http, sim.credentials(), max_concurrent_requests=3)
    await client.probe()
    sim.set_faults(latency=0.3)
    outcomes = await asyncio.gather(*(client.execute([create(i)]) for i in range(3)), return_exceptions=True)
    ok = [o for o in outcomes if isinstance(o, list) and o[0].outcome is Outcome.SUCCESS]
    assert len(ok) == 1
    refused = [o for o in outcomes if o not in ok]
    if level == "control":
        assert all(isinstance(o, TransientError) and not o.outcome_unknown for o in refused)
    else:
        assert all(isinstance(o, list) and o[0].outcome is Outcome.TRANSIENT for o in refused)
    assert sim.state.stats.faults["concurrency_limit"] == 2
    assert sim.state.stats.creates_applied == 1


async def test_enforced_credentials(make_intacct_sim: IntacctSimFactory, intacct_http: aiohttp.ClientSession) -> None:
    options = IntacctSimOptions(
        sender_id="snd", sender_password="snd-pw", company_id="co", user_id="usr", user_password="usr-pw"
    )
    sim = await make_intacct_sim(options)
    good = sim.credentials()
    outcomes = Outcomes()
    client = IntacctClient(intacct_http, good.__class__(**{**good.__dict__, "sender_password": "x"}), observer=outcomes)
    with pytest.raises(ConnectionFailure, match="Incorrect Intacct XML Partner ID or password") as info:
        await client.probe()
    assert "snd-pw" not in str(info.value) and info.value.errorno == "XL03000006"
    client.update_credentials(sim.credentials(user_password="wrong"))
    with pytest.raises(ConnectionFailure, match="Sign-in information is incorrect"):
        await client.probe()
    client.update_credentials(good)
    await client.probe()
    assert outcomes.seen == ["connection_error", "connection_error", "ok", "ok"]
    # A password change at Intacct ends the sessions: the next call fails to log in.
    async with intacct_http.put(sim.control_url("/_sim/credentials"), json={"user_password": "new"}) as r:
        assert r.status == 200
    with pytest.raises(ConnectionFailure):
        await client.probe()
    client.update_credentials(sim.credentials(user_password="new"))
    await client.probe()


async def test_read_projects_chunks_by_100_in_one_request(
    intacct_sim: IntacctSim, intacct_client: IntacctClient
) -> None:
    await intacct_client.execute([create(i) for i in range(0, 250, 2)])
    requests_before = intacct_sim.state.stats.requests
    found = await intacct_client.read_projects([f"J-{i}" for i in range(250)] + ["J-0"])
    assert sorted(found) == sorted(f"J-{i}" for i in range(0, 250, 2))
    assert found["J-4"].name == "Job 4" and found["J-4"].status == "active"
    assert intacct_sim.state.stats.requests == requests_before + 1
    assert intacct_sim.state.stats.functions["readByName"] == 3
    assert await intacct_client.read_projects([]) == {}


async def test_iter_projects_pages_by_offset(intacct_sim: IntacctSim, intacct_client: IntacctClient) -> None:
    await intacct_client.execute(
        [create(i) for i in range(25)]
        + [
            CreateProject("p", {"PROJECTID": "P-1", "NAME": "Parent", "PROJECTCATEGORY": "Contract"}),
            CreateProject("x", {"PROJECTID": "X-1", "NAME": "Other", "PROJECTCATEGORY": "Contract"}),
        ]
    )
    pages = [page async for page in intacct_client.iter_projects(["J-%", "P-%"], page_size=10)]
    assert [len(p) for p in pages] == [10, 10, 6]
    ids = [p.project_id for page in pages for p in page]
    assert ids == [f"J-{i}" for i in range(25)] + ["P-1"]
    assert [p.record_no for page in pages for p in page] == sorted(p.record_no or 0 for page in pages for p in page)
    assert [page async for page in intacct_client.iter_projects(["Z-%"])] == []


async def test_probe_and_observer(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    outcomes = Outcomes()
    client = IntacctClient(intacct_http, intacct_sim.credentials(), observer=outcomes)
    await client.probe()
    await client.probe()
    assert outcomes.seen == ["ok", "ok", "ok"]
    assert Counter(intacct_sim.state.stats.functions)["query"] == 2


async def test_duplicate_controlids_are_refused(intacct_client: IntacctClient) -> None:
    with pytest.raises(ValueError, match="unique"):
        await intacct_client.execute([create(1), UpdateProject("job-1-v1", "J-1", {"NAME": "x"})])
    assert await intacct_client.execute([]) == []


async def test_query_function_in_a_batch(intacct_client: IntacctClient) -> None:
    await intacct_client.execute([create(i) for i in range(3)])
    [result] = await intacct_client.execute([QueryProjects("q", ["J-%"], page_size=2, offset=1)])
    assert [p.project_id for p in result.projects] == ["J-1", "J-2"]
    assert dict(result.data_attrs) == {
        "listtype": "PROJECT",
        "count": "2",
        "totalcount": "3",
        "offset": "1",
        "numremaining": "0",
    }
