"""IntacctRestClient against the REST simulator on loopback: batches, keys, reads, paging, tokens."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from adapters.errors import ConnectionFailure, PermanentError, TransientError
from adapters.intacct import CreateProject, Outcome, QueryProjects, ReadProjects, UpdateProject
from adapters.intacct_rest import IntacctRestClient
from simulators.intacct.rest_options import RestOptions
from tests.plugins.intacct_rest import RestSim, RestSimFactory


def create(n: int | str, **fields: str | None) -> CreateProject:
    values: dict[str, str | None] = {"PROJECTID": f"J-{n}", "NAME": f"Job {n}", "PROJECTCATEGORY": "Contract"}
    values.update(fields)
    return CreateProject(f"job-{n}-v1", values)


def client(sim: RestSim, http: aiohttp.ClientSession, **kwargs: object) -> IntacctRestClient:
    kwargs.setdefault("request_timeout", 5.0)
    return IntacctRestClient(http, sim.credentials(), **kwargs)  # type: ignore[arg-type]


async def test_batch_of_creates_in_one_request(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    functions = [create(i, CUSTOMERID="C1" if i % 2 else None) for i in range(50)]
    results = await rest_client.execute(functions)
    assert [r.controlid for r in results] == [f.controlid for f in functions]
    assert all(r.outcome is Outcome.SUCCESS for r in results)
    assert results[7].projects[0].project_id == "J-7" and results[7].projects[0].record_no == 8
    assert rest_sim.rest.counters["requests"] == 1 and rest_sim.rest.counters["tokens_minted"] == 1
    assert rest_sim.projects()["J-1"]["CUSTOMERID"] == "C1"
    assert rest_sim.projects()["J-2"]["PROJECTCATEGORY"] == "Contract"


async def test_batch_size_is_configurable_and_capped(rest_sim: RestSim, rest_http: aiohttp.ClientSession) -> None:
    small = client(rest_sim, rest_http, batch_size=10)
    await small.execute([create(i) for i in range(35)])
    assert rest_sim.rest.counters["requests"] == 4
    with pytest.raises(ValueError):
        client(rest_sim, rest_http, batch_size=501)


async def test_simulator_refuses_batches_over_its_limit(rest_sim: RestSim, rest_http: aiohttp.ClientSession) -> None:
    rest_sim.set_options(batch_limit=5)
    with pytest.raises(PermanentError):
        await client(rest_sim, rest_http, batch_size=6).execute([create(i) for i in range(6)])
    assert rest_sim.projects() == {}


@pytest.mark.parametrize("duplicate_status", [409, 422, 400])
async def test_mixed_results_in_one_call(make_rest_sim: RestSimFactory, rest_http: aiohttp.ClientSession,
                                         duplicate_status: int) -> None:
    sim = await make_rest_sim(rest_options=RestOptions(duplicate_status=duplicate_status))
    c = client(sim, rest_http)
    await c.execute([create(1)])
    results = await c.execute(
        [
            create(1),  # duplicate
            create(2, CUSTOMERID="NOPE"),
            UpdateProject("u-3", "J-3", {"NAME": "x"}),
            UpdateProject("u-1", "J-1", {"NAME": "Renamed"}),
            create(4, PARENTID="J-5"),  # its parent travels in the same call
            create(5),
        ]
    )
    assert [r.outcome for r in results] == [
        Outcome.ALREADY_EXISTS, Outcome.PERMANENT, Outcome.NOT_EXISTING, Outcome.SUCCESS, Outcome.SUCCESS,
        Outcome.SUCCESS,
    ]
    assert "Customer 'NOPE' specified is not valid." in results[1].error_fields["description2"]
    assert sim.projects()["J-1"]["NAME"] == "Renamed"
    assert sim.projects()["J-4"]["PARENTID"] == "J-5"
    assert sim.state.stats.creates_applied == 3


async def test_record_key_looked_up_once_then_cached(rest_sim: RestSim, rest_http: aiohttp.ClientSession) -> None:
    await client(rest_sim, rest_http).execute([create(1), create(2)])
    fresh = client(rest_sim, rest_http)  # knows no keys yet
    queries = rest_sim.state.stats.functions["query"]
    await fresh.execute([UpdateProject("u1", "J-1", {"NAME": "a"}), UpdateProject("u2", "J-2", {"NAME": "b"})])
    assert rest_sim.state.stats.functions["query"] == queries + 1
    await fresh.execute([UpdateProject("u1b", "J-1", {"NAME": "c"})])
    assert rest_sim.state.stats.functions["query"] == queries + 1
    assert rest_sim.projects()["J-1"]["NAME"] == "c" and rest_sim.projects()["J-2"]["NAME"] == "b"


async def test_stale_key_is_not_existing(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    await rest_client.execute([create(1)])
    rest_sim.state.projects.delete("J-1")
    [result] = await rest_client.execute([UpdateProject("u", "J-1", {"NAME": "x"})])
    assert result.outcome is Outcome.NOT_EXISTING
    assert rest_client.stats["keys_cached"] == 0


async def test_reads_by_id_in_chunks(rest_sim: RestSim, rest_http: aiohttp.ClientSession) -> None:
    c = client(rest_sim, rest_http, in_chunk=3)
    await c.execute([create(i, CUSTOMERID="C2") for i in range(10)])
    found = await c.read_projects([f"J-{i}" for i in range(0, 12, 2)] + ["J,comma"])
    assert sorted(found) == ["J-0", "J-2", "J-4", "J-6", "J-8"]
    assert found["J-4"].customer_id == "C2" and found["J-4"].record_no == 5 and found["J-4"].status == "active"
    [result] = await c.execute([ReadProjects("r", ["J-1", "J-9"])])
    assert {p.project_id for p in result.projects} == {"J-1", "J-9"}


async def test_in_list_limit_is_a_refused_request(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    rest_sim.set_options(max_in_list=2)  # unknown in Intacct: the longest $in list
    with pytest.raises(PermanentError, match="at most 2"):
        await rest_client.read_projects(["J-1", "J-2", "J-3"])


@pytest.mark.parametrize("key_order", ["numeric", "text"])
async def test_listing_by_prefix_pages(make_rest_sim: RestSimFactory, rest_http: aiohttp.ClientSession,
                                       key_order: str) -> None:
    sim = await make_rest_sim(rest_options=RestOptions(key_order=key_order))
    c = client(sim, rest_http)
    await c.execute([create(i) for i in range(25)] + [create(f"X{i}", PROJECTID=f"P-{i}") for i in range(6)]
                    + [CreateProject("other", {"PROJECTID": "Q-1", "NAME": "q", "PROJECTCATEGORY": "Contract"})])
    pages = [page async for page in c.iter_projects(["J-%", "P-%"], page_size=7)]
    ids = [p.project_id for page in pages for p in page]
    assert len(pages) == 5 and all(len(page) <= 7 for page in pages)
    assert sorted(ids) == sorted([f"J-{i}" for i in range(25)] + [f"P-{i}" for i in range(6)])
    middle = [p.project_id async for page in c.iter_projects(["J-1_"]) for p in page]
    assert sorted(middle) == [f"J-{i}" for i in range(10, 20)]


async def test_query_function_reports_remaining(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    await rest_client.execute([create(i) for i in range(12)])
    [page] = await rest_client.execute([QueryProjects("q", ("J-%",), page_size=5, offset=5)])
    assert [p.project_id for p in page.projects] == [f"J-{i}" for i in range(5, 10)]
    assert page.data_attrs["count"] == "5" and page.data_attrs["numremaining"] == "2"


async def test_token_minted_once_for_concurrent_calls(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    await asyncio.gather(*(rest_client.read_projects([f"J-{i}"]) for i in range(8)))
    assert rest_sim.rest.counters["tokens_minted"] == 1
    assert rest_client.max_in_flight_seen <= 2 and rest_sim.state.stats.max_in_flight <= 2


async def test_token_renewed_before_expiry(make_rest_sim: RestSimFactory, rest_http: aiohttp.ClientSession) -> None:
    sim = await make_rest_sim(rest_options=RestOptions(token_ttl=1.0))
    c = client(sim, rest_http)
    await c.probe()
    await asyncio.sleep(0.95)  # past 90 % of the token's life, before its end
    await c.probe()
    assert sim.rest.counters["tokens_minted"] == 2 and sim.rest.counters["token_refusals"] == 0


@pytest.mark.parametrize("answer", [401, 400])
async def test_revoked_token_is_minted_again_once(make_rest_sim: RestSimFactory, rest_http: aiohttp.ClientSession,
                                                  answer: int) -> None:
    sim = await make_rest_sim(rest_options=RestOptions(invalid_token_answer=answer))
    c = client(sim, rest_http)
    await c.execute([create(1)])
    sim.rest.revoke_all()
    [result] = await c.execute([create(2)])
    assert result.outcome is Outcome.SUCCESS
    assert sim.rest.counters["tokens_minted"] == 2 and sim.rest.counters["token_refusals"] == 1
    sim.set_faults(http_401_rate=1.0)  # every call refused: credentials, not a stale token
    with pytest.raises(ConnectionFailure):
        await c.execute([create(3)])
    assert "J-3" not in sim.projects()


async def test_wrong_client_credentials_are_a_connection_failure(rest_sim: RestSim,
                                                                 rest_http: aiohttp.ClientSession) -> None:
    rest_sim.set_options(client_secret="right-secret-value")
    wrong = IntacctRestClient(rest_http, rest_sim.credentials(client_secret="wrong-secret-value"))
    with pytest.raises(ConnectionFailure) as info:
        await wrong.probe()
    assert "wrong-secret-value" not in str(info.value) and "wrong-secret-value" not in repr(wrong.credentials)
    no_company = IntacctRestClient(rest_http, rest_sim.credentials(username="wsuser"))
    with pytest.raises(ConnectionFailure, match="GW-0012"):
        await no_company.probe()


@pytest.mark.parametrize("header", ["x-ia", "standard", "both"])
async def test_rate_limit_is_transient_with_retry_after(rest_sim: RestSim, rest_client: IntacctRestClient,
                                                        header: str) -> None:
    await rest_client.probe()
    rest_sim.set_options(retry_after_header=header)
    rest_sim.set_faults(rate_limit_rate=1.0, retry_after=7)
    with pytest.raises(TransientError) as info:
        await rest_client.execute([create(1)])
    assert info.value.outcome_unknown is False and info.value.retry_after == 7.0


async def test_lost_answer_is_replayed_from_the_idempotency_cache(rest_sim: RestSim,
                                                                   rest_client: IntacctRestClient) -> None:
    rest_sim.set_faults(lost_answer_rate=1.0)
    results = await rest_client.execute([create(1), create(2)])
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert results[1].projects[0].record_no == 2
    assert rest_sim.rest.counters["replays_answered"] == 1 and rest_client.stats["replays"] == 1
    assert rest_sim.state.stats.creates_applied == 2 and rest_sim.state.stats.duplicate_create_attempts == 0


async def test_without_replays_a_lost_answer_stays_unknown(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    rest_sim.set_options(idempotency_supported=False)  # unknown for projects: idempotenceSupported
    rest_sim.set_faults(lost_answer_rate=1.0)
    with pytest.raises(TransientError) as info:
        await rest_client.execute([create(1)])
    assert info.value.outcome_unknown is True  # the engine reads before it resends
    assert list(rest_sim.projects()) == ["J-1"] and rest_sim.state.stats.duplicate_create_attempts == 2


async def test_same_change_again_is_applied_not_replayed(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    await rest_client.execute([create(1)])
    for name in ("B", "A", "B"):
        await rest_client.execute([UpdateProject(f"u-{name}", "J-1", {"NAME": name})])
        rest_sim.state.projects.update("J-1", {"NAME": "A"}, rest_sim.state.customers)  # someone changes it back
    [result] = await rest_client.execute([UpdateProject("u-last", "J-1", {"NAME": "B"})])
    assert result.outcome is Outcome.SUCCESS and rest_sim.projects()["J-1"]["NAME"] == "B"
    assert rest_sim.rest.counters["replays_answered"] == 0


@pytest.mark.parametrize("after_cache", ["conflict", "execute"])
async def test_key_past_the_cache_is_resent_under_a_new_key(rest_sim: RestSim, rest_client: IntacctRestClient,
                                                             monkeypatch: pytest.MonkeyPatch, after_cache: str) -> None:
    nonces = iter(["n1", "n1", "n2", "n3"])
    monkeypatch.setattr("adapters.intacct_rest.writes.token_hex", lambda _n: next(nonces))
    rest_sim.set_options(idempotency_cache_s=0.01, replay_after_cache=after_cache)
    await rest_client.execute([create(1)])
    await asyncio.sleep(0.05)
    rest_sim.state.projects.delete("J-1")  # drift: the project vanished, the same create must run again
    [result] = await rest_client.execute([create(1)])
    assert result.outcome is Outcome.SUCCESS and "J-1" in rest_sim.projects()
    assert rest_sim.rest.counters["idempotency_conflicts"] == (1 if after_cache == "conflict" else 0)


@pytest.mark.parametrize(("mode", "second"), [("conflict", 409), ("rate_limit", 429), ("wait", 201)])
async def test_concurrent_replay_answers(rest_sim: RestSim, rest_http: aiohttp.ClientSession, rest_client:
                                         IntacctRestClient, mode: str, second: int) -> None:
    rest_sim.set_options(concurrent_replay=mode)
    rest_sim.set_faults(latency=0.3, max_concurrent=None)
    await rest_client.probe()
    token = rest_client._transport.tokens._token.value  # type: ignore[union-attr]
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "same-key"}
    body = {"id": "J-1", "name": "n", "category": "contract"}

    async def post() -> int:
        async with rest_http.post(rest_sim.base_url + "/objects/projects/project", json=body, headers=headers) as r:
            return r.status

    first = asyncio.create_task(post())
    await asyncio.sleep(0.1)
    assert await post() == second
    assert await first == 201
    assert rest_sim.state.stats.creates_applied == 1


@pytest.mark.parametrize("form", ["any", "id_null", "key_null", "null"])
async def test_clearing_a_reference(rest_sim: RestSim, rest_client: IntacctRestClient, form: str) -> None:
    rest_sim.set_options(clear_reference=form)  # unknown: how a reference is cleared
    await rest_client.execute([create(1, CUSTOMERID="C1")])
    [result] = await rest_client.execute([UpdateProject("u", "J-1", {"CUSTOMERID": None})])
    if form in ("any", "id_null"):
        assert result.outcome is Outcome.SUCCESS and rest_sim.projects()["J-1"]["CUSTOMERID"] is None
    else:
        assert result.outcome is Outcome.PERMANENT and rest_sim.projects()["J-1"]["CUSTOMERID"] == "C1"


async def test_one_status_for_a_whole_batch(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    rest_sim.set_options(batch_failure="first_status")  # unknown: the exact body of a partly failed batch
    await rest_client.execute([create(1)])
    results = await rest_client.execute([create(1), create(2)])
    assert [r.outcome for r in results] == [Outcome.ALREADY_EXISTS, Outcome.ALREADY_EXISTS]
    with pytest.raises(PermanentError):
        await rest_client.execute([create(3, CUSTOMERID="NOPE"), create(4)])


@pytest.mark.parametrize("envelope", ["nested", "top"])
async def test_refusal_texts_in_either_envelope(rest_sim: RestSim, rest_client: IntacctRestClient,
                                                envelope: str) -> None:
    rest_sim.set_options(error_envelope=envelope)
    [result] = await rest_client.execute([create(1, STATUS="closed")])
    assert result.outcome is Outcome.PERMANENT
    assert result.error_fields["errorno"] == "REST-1064" and "closed" in result.error_fields["description2"]


@pytest.mark.parametrize("shared", [True, False])
async def test_xml_and_rest_share_request_slots(rest_sim: RestSim, rest_client: IntacctRestClient,
                                                shared: bool) -> None:
    rest_sim.set_options(shared_concurrency=shared)  # unknown: one limit for both APIs?
    await rest_client.probe()
    rest_sim.set_faults(max_concurrent=1, concurrency_wait=0.05)
    await rest_sim.state.limiter.acquire(1, 0)  # an XML request holds the company's only slot
    try:
        if shared:
            with pytest.raises(TransientError) as info:
                await rest_client.probe()
            assert info.value.outcome_unknown is False
        else:
            await rest_client.probe()
    finally:
        await rest_sim.state.limiter.release()


async def test_server_errors_on_reads_are_transient(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    await rest_client.probe()
    rest_sim.set_faults(error_rate=1.0)
    with pytest.raises(TransientError):
        await rest_client.read_projects(["J-1"])


async def test_entity_goes_in_its_header(rest_sim: RestSim, rest_http: aiohttp.ClientSession) -> None:
    await IntacctRestClient(rest_http, rest_sim.credentials(entity_id="E100")).probe()
    assert rest_sim.rest.entities_seen == {"E100"}
    await IntacctRestClient(rest_http, rest_sim.credentials()).probe()
    assert rest_sim.rest.entities_seen == {"E100"}  # no entity: no header, the token's default entity


async def test_required_location_refuses_each_create(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    rest_sim.set_options(location_required=True)  # unknown: required in multi-entity companies?
    [result] = await rest_client.execute([create(1)])
    assert result.outcome is Outcome.PERMANENT and "Location is required" in result.error_fields["description2"]


async def test_missing_projects_permission_is_a_connection_failure(rest_sim: RestSim,
                                                                   rest_client: IntacctRestClient) -> None:
    rest_sim.set_options(projects_permission=False)
    with pytest.raises(ConnectionFailure, match="403"):
        await rest_client.probe()
    with pytest.raises(ConnectionFailure):
        await rest_client.execute([create(1)])
    assert rest_sim.projects() == {}


async def test_describe_reports_the_login(rest_sim: RestSim, rest_client: IntacctRestClient) -> None:
    rest_sim.set_options(token_ttl=7200)
    await rest_client.execute([create(1), create(2)])
    facts = await rest_client.describe()
    assert facts == {"api": "rest", "base_url": rest_sim.base_url, "user": "wsuser@company", "entity": None,
                     "token_expires_in_s": 7200.0, "projects": 2}
