"""ServiceTitanClient against the simulator on loopback: tokens, retries, limits, feeds, lookups."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from adapters.errors import ConnectionFailure, NotFoundError, PermanentError, TransientError
from adapters.servicetitan import ServiceTitanClient, ServiceTitanCredentials, export_start
from simulators.servicetitan.timefmt import parse_ticks, ticks_to_datetime
from tests.plugins.simulators import ServiceTitanSim

SECRETS = ("cs1.sample-secret", "ak1.sample-app-key", "right-secret", "right-key", "wrong-secret", "wrong-key")


def _client(sim: ServiceTitanSim, http: aiohttp.ClientSession, **options: Any) -> ServiceTitanClient:
    credentials = options.pop("credentials", None) or sim.credentials()
    defaults: dict[str, Any] = {"request_timeout": 5.0, "backoff_initial": 0.01, "backoff_max": 0.05}
    return ServiceTitanClient(http, credentials, **(defaults | options))


def _assert_no_secret(exc: BaseException) -> None:
    text = f"{exc} {exc!r}"
    for secret in SECRETS:
        assert secret not in text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Outcomes:
    """An observer that records outcomes."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.seen.append(outcome)


# ---------------------------------------------------------------------------- tokens


async def test_one_token_is_fetched_and_shared_by_concurrent_calls(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    job = servicetitan_sim.create_job()
    jobs = await asyncio.gather(*(servicetitan_client.get_job(job.id) for _ in range(10)))
    assert {j.id for j in jobs} == {job.id}
    assert servicetitan_sim.stats.tokens_issued == 1


async def test_token_is_renewed_before_it_expires(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    servicetitan_sim.set_faults(token_ttl=1)  # renewed half a lifetime (0.5 s) before expiry
    job = servicetitan_sim.create_job()
    await servicetitan_client.get_job(job.id)
    await asyncio.sleep(0.6)
    await servicetitan_client.get_job(job.id)
    assert servicetitan_sim.stats.tokens_issued == 2
    assert servicetitan_sim.stats.unauthorized == 0


async def test_a_401_renews_the_token_once_and_repeats_the_call(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    job = servicetitan_sim.create_job()
    await servicetitan_client.get_job(job.id)
    servicetitan_sim.expire_tokens()
    assert (await servicetitan_client.get_job(job.id)).id == job.id
    assert servicetitan_sim.stats.tokens_issued == 2
    assert servicetitan_sim.stats.unauthorized == 1


async def test_a_second_401_is_a_connection_failure(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    servicetitan_sim.state.credentials.app_key = "right-key"
    client = _client(servicetitan_sim, servicetitan_http, credentials=servicetitan_sim.credentials(app_key="wrong-key"))
    with pytest.raises(ConnectionFailure) as caught:
        await client.get_job(1)
    assert caught.value.status == 401
    assert servicetitan_sim.stats.unauthorized == 2 and servicetitan_sim.stats.tokens_issued == 2
    _assert_no_secret(caught.value)


async def test_refused_client_credentials_are_a_connection_failure(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    servicetitan_sim.state.credentials.client_secret = "right-secret"
    client = _client(
        servicetitan_sim, servicetitan_http, credentials=servicetitan_sim.credentials(client_secret="wrong-secret")
    )
    with pytest.raises(ConnectionFailure, match="refused the client credentials.*invalid_client") as caught:
        await client.get_job(1)
    _assert_no_secret(caught.value)
    assert servicetitan_sim.stats.requests.get("api.jobs.get", 0) == 0


async def test_unreachable_token_endpoint_is_transient(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    credentials = servicetitan_sim.credentials(auth_url=f"http://127.0.0.1:{_closed_port()}/connect/token")
    client = _client(servicetitan_sim, servicetitan_http, credentials=credentials, max_retries=1)
    with pytest.raises(TransientError, match="token endpoint is unreachable"):
        await client.get_job(1)


async def test_403_is_a_connection_failure(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    servicetitan_sim.set_faults(forbidden=True)
    with pytest.raises(ConnectionFailure, match="403.*connected to tenant 1234567"):
        await servicetitan_client.get_job(1)


async def test_probe_fetches_a_token_and_checks_the_api(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http)
    await client.probe()
    await client.probe()
    assert servicetitan_sim.stats.tokens_issued == 2  # a probe always fetches a new token
    wrong_base = _client(
        servicetitan_sim,
        servicetitan_http,
        credentials=servicetitan_sim.credentials(api_base_url=f"{servicetitan_sim.base_url}/v2"),
    )
    with pytest.raises(ConnectionFailure, match="api_base_url"):
        await wrong_base.probe()


async def test_update_credentials_drops_the_token(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    servicetitan_sim.state.credentials.client_secret = "right-secret"
    client = _client(
        servicetitan_sim, servicetitan_http, credentials=servicetitan_sim.credentials(client_secret="wrong-secret")
    )
    with pytest.raises(ConnectionFailure):
        await client.probe()
    client.update_credentials(servicetitan_sim.credentials(client_secret="right-secret"))
    await client.probe()


# ---------------------------------------------------------------------------- 429, 5xx, timeouts


async def test_429_waits_retry_after_seconds(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    outcomes = Outcomes()
    client = _client(servicetitan_sim, servicetitan_http, observer=outcomes)
    job = servicetitan_sim.create_job()
    await client.get_job(job.id)
    servicetitan_sim.set_faults(rate_limit_next=1, retry_after=0.3)
    started = time.monotonic()
    await client.get_job(job.id)
    assert 0.3 <= time.monotonic() - started < 2.0
    # API call refused, token renewed after the wait (the observer sees token requests too), retry.
    assert outcomes.seen[-3:] == ["rate_limited", "ok", "ok"]
    assert servicetitan_sim.stats.tokens_issued == 2


async def test_429_waits_until_an_http_date(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    job = servicetitan_sim.create_job()
    servicetitan_sim.set_faults(rate_limit_next=1, retry_after=0.2, retry_after_http_date=True)
    started = time.monotonic()
    await servicetitan_client.get_job(job.id)
    # The date is rounded up to a whole second, so the wait is 0.2 s to 1.2 s.
    assert 0.15 <= time.monotonic() - started < 2.5


async def test_429_until_retries_run_out(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, max_retries=2)
    servicetitan_sim.set_faults(rate_limit_rate=1.0, retry_after=0.01)
    with pytest.raises(TransientError) as caught:
        await client.get_job(1)
    assert caught.value.status == 429 and caught.value.retry_after == 0.01
    assert servicetitan_sim.stats.rate_limited_injected == 3


async def test_a_long_retry_after_is_handed_to_the_caller(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    servicetitan_sim.set_faults(rate_limit_next=1, retry_after=120)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        await servicetitan_client.get_job(1)
    assert caught.value.retry_after == 120 and time.monotonic() - started < 1.0


async def test_5xx_is_retried_with_a_renewed_token(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    job = servicetitan_sim.create_job()
    servicetitan_sim.set_faults(error_next=2)
    assert (await servicetitan_client.get_job(job.id)).id == job.id
    assert servicetitan_sim.stats.requests["api.jobs.get"] == 3
    assert servicetitan_sim.stats.tokens_issued == 3  # first token + one renewal before each retry


async def test_5xx_until_retries_run_out_is_transient(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, max_retries=2)
    servicetitan_sim.set_faults(error_rate=1.0, error_status=502)
    with pytest.raises(TransientError, match="HTTP 502.*gave up after 3 attempts") as caught:
        await client.get_job(1)
    assert caught.value.status == 502
    assert servicetitan_sim.stats.requests["api.jobs.get"] == 3


async def test_a_timeout_is_retried(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, request_timeout=0.3)
    job = servicetitan_sim.create_job()
    servicetitan_sim.set_faults(timeout_next=1, hang_seconds=5)
    started = time.monotonic()
    assert (await client.get_job(job.id)).id == job.id
    assert 0.3 <= time.monotonic() - started < 2.0


async def test_timeouts_until_retries_run_out_are_transient(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, request_timeout=0.2, max_retries=1)
    servicetitan_sim.set_faults(timeout_rate=1.0, hang_seconds=5)
    with pytest.raises(TransientError, match="did not answer in time"):
        await client.get_job(1)
    assert servicetitan_sim.stats.timeouts_injected == 2


async def test_unreachable_api_is_transient(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    credentials = servicetitan_sim.credentials(api_base_url=f"http://127.0.0.1:{_closed_port()}")
    outcomes = Outcomes()
    client = _client(servicetitan_sim, servicetitan_http, credentials=credentials, max_retries=2, observer=outcomes)
    with pytest.raises(TransientError, match="unreachable"):
        await client.get_job(1)
    # Three attempts, each after a token request (the first fetch, then a renewal after each backoff).
    assert outcomes.seen == ["ok", "connection_error"] * 3


async def test_concurrency_cap_holds(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, max_concurrent=2)
    job = servicetitan_sim.create_job()
    servicetitan_sim.set_faults(latency=0.05)
    await asyncio.gather(*(client.get_job(job.id) for _ in range(8)))
    assert servicetitan_sim.stats.max_in_flight == 2


async def test_rate_cap_stays_under_the_servers_limit(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, max_requests_per_second=50, max_concurrent=8)
    job = servicetitan_sim.create_job()
    servicetitan_sim.set_faults(rate_limit_per_second=50)
    started = time.monotonic()
    await asyncio.gather(*(client.get_job(job.id) for _ in range(60)))
    assert time.monotonic() - started >= 0.8  # 12 in the burst, 48 more at 50/s
    assert servicetitan_sim.stats.rate_limited_bucket == 0


async def test_the_servers_rate_limit_is_honoured_when_exceeded(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, max_requests_per_second=0, max_concurrent=16)
    job = servicetitan_sim.create_job()
    servicetitan_sim.set_faults(rate_limit_per_second=10)
    await asyncio.gather(*(client.get_job(job.id) for _ in range(14)))
    assert servicetitan_sim.stats.rate_limited_bucket >= 1  # and every call still succeeded


# ---------------------------------------------------------------------------- export feeds


async def _drain(pages: Any) -> tuple[list[Any], list[Any]]:
    collected, rows = [], []
    async for page in pages:
        collected.append(page)
        rows.extend(page.rows)
    return collected, rows


async def test_export_pages_to_the_end(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    servicetitan_sim.set_faults(export_page_size=5)
    ids = [servicetitan_sim.create_job().id for _ in range(12)]
    pages, rows = await _drain(servicetitan_client.export_jobs("2000-01-01"))
    assert [len(p.rows) for p in pages] == [5, 5, 2]
    assert [p.has_more for p in pages] == [True, True, False]
    assert [r.id for r in rows] == ids and all(r.active for r in rows)


async def test_export_resumes_from_a_stored_token_without_losing_rows(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    servicetitan_sim.set_faults(export_page_size=4, duplicate_rows=0.3, seed=11)
    first = [servicetitan_sim.create_job().id for _ in range(10)]
    stored = ""
    async for page in servicetitan_client.export_jobs("2000-01-01"):
        stored = page.continue_from
        break  # the process "dies" after committing one page
    more = [servicetitan_sim.create_job().id for _ in range(3)]
    servicetitan_sim.update_job(first[0], active=False)
    _, rows = await _drain(servicetitan_client.export_jobs(stored))
    seen = {r.id for r in rows}
    assert set(first[4:] + more + [first[0]]) <= seen
    assert [r.active for r in rows if r.id == first[0]][-1] is False
    _, again = await _drain(
        servicetitan_client.export_jobs(pages_end := (await _last_token(servicetitan_client, stored)))
    )
    assert pages_end and {r.id for r in again} <= seen  # at the end only duplicates, if anything


async def _last_token(client: ServiceTitanClient, start: str) -> str:
    token = start
    async for page in client.export_jobs(start):
        token = page.continue_from
    return token


async def test_export_projects_carry_job_ids_and_active(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    project = servicetitan_sim.create_project(name="Riverside Office HVAC Retrofit")
    job = servicetitan_sim.create_job(projectId=project.id)
    servicetitan_sim.update_project(project.id, name="Riverside Office HVAC Retrofit (phase 2)", active=False)
    _, rows = await _drain(servicetitan_client.export_projects(export_start(ticks_to_datetime(0))))
    assert [(r.id, r.name, r.job_ids, r.active) for r in rows] == [
        (project.id, "Riverside Office HVAC Retrofit (phase 2)", (job.id,), False)
    ]


async def test_an_iso_time_with_plus_arrives_intact(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient, servicetitan_http: aiohttp.ClientSession
) -> None:
    old = servicetitan_sim.create_job(createdOn="2020-01-01T00:00:00Z").id
    new = servicetitan_sim.create_job(createdOn="2024-06-01T12:00:00Z").id
    _, rows = await _drain(servicetitan_client.export_jobs("2024-06-01T12:00:00+00:00"))
    assert [r.id for r in rows] == [new] and old != new
    assert "from=2024-06-01T12%3A00%3A00%2B00%3A00" in servicetitan_sim.state.recent_requests[-1]["query"]
    # A raw `+` decodes to a space, which the simulator refuses as ServiceTitan would.
    form = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}
    async with servicetitan_http.post(servicetitan_sim.auth_url, data=form) as resp:
        token = (await resp.json())["access_token"]
    url = f"{servicetitan_sim.base_url}/jpm/v2/tenant/1234567/export/jobs?from=2024-06-01T12:00:00+00:00"
    async with servicetitan_http.get(url, headers={"Authorization": f"Bearer {token}", "ST-App-Key": "k"}) as resp:
        assert resp.status == 400
        assert "from" in (await resp.json())["errors"]


async def test_a_refused_request_is_permanent_with_the_problem_details(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    outcomes = Outcomes()
    client = _client(servicetitan_sim, servicetitan_http, observer=outcomes)
    with pytest.raises(PermanentError) as caught:
        await _drain(client.export_jobs("last tuesday"))
    assert caught.value.status == 400 and not isinstance(caught.value, NotFoundError)
    assert "HTTP 400: One or more validation errors occurred.; from: The value 'last tuesday'" in str(caught.value)
    assert outcomes.seen == ["ok", "permanent_error"]  # refused at once, no retry


async def test_include_recent_changes_false_hides_fresh_changes(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    servicetitan_sim.create_job()
    _, rows = await _drain(servicetitan_client.export_jobs("2000-01-01", include_recent_changes=False))
    assert rows == []
    assert "includeRecentChanges=false" in servicetitan_sim.state.recent_requests[-1]["query"]
    servicetitan_sim.set_faults(recent_changes_delay=0)
    _, rows = await _drain(servicetitan_client.export_jobs("2000-01-01", include_recent_changes=False))
    assert len(rows) == 1


# ---------------------------------------------------------------------------- lookups


async def test_get_job_and_project_parse_seven_digit_times(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    customer = servicetitan_sim.create_customer(name="Acme Property Management LLC")
    project = servicetitan_sim.create_project(name="Summit Office Park Boiler Replacement", customerId=customer.id)
    job = servicetitan_sim.create_job(projectId=project.id, jobNumber="24001", createdOn="2021-07-19T20:35:38.2876004Z")
    got = await servicetitan_client.get_job(job.id)
    assert (got.job_number, got.project_id, got.customer_id) == ("24001", project.id, customer.id)
    assert got.created_on == ticks_to_datetime(parse_ticks("2021-07-19T20:35:38.2876Z"))
    assert (await servicetitan_client.get_project(project.id)).job_ids == (job.id,)
    for call in (servicetitan_client.get_job, servicetitan_client.get_project):
        with pytest.raises(NotFoundError, match="404"):
            await call(999_999)


async def test_get_jobs_chunks_ids_by_50(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    ids = [servicetitan_sim.create_job().id for _ in range(110)]
    jobs = await servicetitan_client.get_jobs([*ids, 5, ids[0]])
    assert sorted(j.id for j in jobs) == ids
    queries = [r["query"] for r in servicetitan_sim.state.recent_requests if r["route"] == "api.jobs.list"]
    assert len(queries) == 3
    for query in queries:
        ids_param = dict(p.split("=", 1) for p in query.split("&"))["ids"]
        assert len(ids_param.split(",")) <= 50


async def test_get_projects_by_ids(servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient) -> None:
    ids = [servicetitan_sim.create_project(name=f"P{i}").id for i in range(3)]
    assert sorted(p.id for p in await servicetitan_client.get_projects(ids)) == ids
    assert await servicetitan_client.get_projects([]) == []


async def test_iter_jobs_pages_with_filters(
    servicetitan_sim: ServiceTitanSim, servicetitan_client: ServiceTitanClient
) -> None:
    servicetitan_sim.create_job(createdOn="2020-01-01T00:00:00Z")
    recent = [servicetitan_sim.create_job().id for _ in range(9)]
    since = ticks_to_datetime(parse_ticks("2025-01-01"))
    pages = [page async for page in servicetitan_client.iter_jobs(modified_on_or_after=since, page_size=4)]
    assert [len(p) for p in pages] == [4, 4, 1]
    assert [j.id for p in pages for j in p] == recent
    query = servicetitan_sim.state.recent_requests[-1]["query"]
    assert "sort=%2BId" in query and "modifiedOnOrAfter=2025-01-01T00%3A00%3A00.0000000Z" in query
    projects = [p async for p in servicetitan_client.iter_projects(created_on_or_after=ticks_to_datetime(0))]
    assert projects == [[]]


async def test_customers_are_fetched_in_chunks_and_cached(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, customer_cache_size=70)
    ids = [servicetitan_sim.create_customer(name=f"Customer {i}").id for i in range(60)]
    gone = servicetitan_sim.create_customer(name="Smith Residence", active=False).id
    found = await client.get_customers([*ids, gone, 424242])
    assert set(found) == {*ids, gone} and found[gone].active is False
    calls: Callable[[], int] = lambda: servicetitan_sim.stats.requests.get("api.customers.list", 0)  # noqa: E731
    assert calls() == 2
    assert (await client.get_customers(ids[:10]))[ids[0]].name == "Customer 0"
    assert (await client.get_customer(gone)).name == "Smith Residence"
    assert calls() == 2 and servicetitan_sim.stats.requests.get("api.customers.get", 0) == 0
    with pytest.raises(NotFoundError):
        await client.get_customer(424242)


async def test_customer_cache_is_bounded(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    client = _client(servicetitan_sim, servicetitan_http, customer_cache_size=3)
    ids = [servicetitan_sim.create_customer().id for _ in range(5)]
    await client.get_customers(ids)
    await client.get_customers(ids[-3:])  # still cached
    assert servicetitan_sim.stats.requests["api.customers.list"] == 1
    await client.get_customers(ids[:1])  # evicted
    assert servicetitan_sim.stats.requests["api.customers.list"] == 2


async def test_credentials_for_another_tenant_see_other_data(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> None:
    servicetitan_sim.create_job()
    other = _client(servicetitan_sim, servicetitan_http, credentials=servicetitan_sim.credentials(tenant_id=7654321))
    _, rows = await _drain(other.export_jobs("2000-01-01"))
    assert rows == [] and isinstance(other.tenant_id, int)
    assert isinstance(servicetitan_sim.credentials(), ServiceTitanCredentials)
