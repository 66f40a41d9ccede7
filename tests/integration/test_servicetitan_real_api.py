"""What a real (or hostile) ServiceTitan may send that the simulator did not: issue 10, points 6–8, 10.

A scripted server on loopback hands out tokens and answers API calls as each test says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from adapters.errors import ConnectionFailure, TransientError
from adapters.servicetitan import ServiceTitanClient, ServiceTitanCredentials
from adapters.servicetitan.models import RejectedRow

TENANT = 42
GOOD_JOB = (
    '{"id": 7, "jobNumber": "J7", "projectId": null, "customerId": 3, "createdOn": "2026-01-01T00:00:00Z",'
    ' "modifiedOn": "2026-01-02T00:00:00Z", "active": true}'
)
Api = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Upstream:
    api: Api | None = None
    token: Api | None = None
    api_calls: list[str] = field(default_factory=list)

    async def handle_token(self, request: web.Request) -> web.StreamResponse:
        if self.token is not None:
            return await self.token(request)
        return web.json_response({"access_token": "t", "expires_in": 900, "token_type": "Bearer"})

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        self.api_calls.append(request.path_qs)
        assert self.api is not None
        return await self.api(request)


Start = Callable[..., Awaitable[tuple[ServiceTitanClient, Upstream]]]


@pytest.fixture
def upstream(aiohttp_server: AiohttpServer, servicetitan_http: aiohttp.ClientSession) -> Start:
    async def start(up: Upstream, **options: Any) -> tuple[ServiceTitanClient, Upstream]:
        app = web.Application()
        app.router.add_post("/connect/token", up.handle_token)
        app.router.add_route("*", "/{tail:.*}", up.handle_api)
        server = await aiohttp_server(app, host="127.0.0.1")
        base = str(server.make_url("/")).rstrip("/")
        credentials = ServiceTitanCredentials(base, f"{base}/connect/token", TENANT, "ak", "cid", "cs")
        settings: dict[str, Any] = {"request_timeout": 2.0, "backoff_initial": 0.01, "backoff_max": 0.02, **options}
        return ServiceTitanClient(servicetitan_http, credentials, **settings), up

    return start


def raw_json(text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=text, status=status, headers=headers, content_type="application/json")


# -- 7. no redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_the_token_request_does_not_follow_a_redirect(upstream: Start, status: int) -> None:
    async def token(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": "https://harvest.evil.example/token"})

    client, up = await upstream(Upstream(token=token))
    with pytest.raises(ConnectionFailure, match="harvest.evil.example"):
        await client.get_job(1)
    assert up.api_calls == []


async def test_an_api_call_does_not_follow_a_redirect(upstream: Start) -> None:
    async def api(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/moved"):
            raise AssertionError("the redirect was followed")
        return web.Response(status=307, headers={"Location": "http://mirror.evil.example/moved"})

    client, up = await upstream(Upstream(api=api))
    with pytest.raises(ConnectionFailure, match="mirror.evil.example"):
        await client.get_job(1)
    assert len(up.api_calls) == 1


# -- 6. bounded bodies and paging ------------------------------------------------------------------


async def test_an_oversized_page_is_transient(upstream: Start) -> None:
    async def api(request: web.Request) -> web.StreamResponse:
        return raw_json('{"hasMore": false, "continueFrom": "x", "data": [' + ",".join([GOOD_JOB] * 2000) + "]}")

    client, _ = await upstream(Upstream(api=api), max_page_bytes=100_000, max_retries=1)
    with pytest.raises(TransientError, match="exceeds 100000 bytes"):
        async for _ in client.export_jobs("2026-01-01T00:00:00Z"):
            pass


async def test_an_oversized_token_answer_is_transient(upstream: Start) -> None:
    async def token(request: web.Request) -> web.StreamResponse:
        return raw_json(json.dumps({"access_token": "t" * 70_000, "expires_in": 900}))

    client, _ = await upstream(Upstream(token=token), max_retries=0)
    with pytest.raises(TransientError, match="token answer"):
        await client.get_job(1)


async def test_an_export_that_does_not_move_on_is_an_error(upstream: Start) -> None:
    async def api(request: web.Request) -> web.StreamResponse:
        return raw_json(f'{{"hasMore": true, "continueFrom": "same", "data": [{GOOD_JOB}]}}')

    client, up = await upstream(Upstream(api=api))
    with pytest.raises(TransientError, match="no progress"):
        async for _ in client.export_jobs("same"):
            pass
    assert len(up.api_calls) == 1


async def test_list_paging_stops_at_the_announced_total_plus_a_margin(upstream: Start) -> None:
    async def api(request: web.Request) -> web.StreamResponse:
        # Claims 3 records and more to come, for ever.
        data = f"[{GOOD_JOB}, {GOOD_JOB}]"
        return raw_json(f'{{"page": 1, "pageSize": 2, "hasMore": true, "totalCount": 3, "data": {data}}}')

    client, up = await upstream(Upstream(api=api))
    pages = [page async for page in client.iter_jobs(page_size=2)]
    assert len(pages) == 4  # 3 announced + 2 pages of 2 of margin = 7 rows: stops after 8
    assert all("includeTotal=true" in call for call in up.api_calls)


async def test_an_empty_list_page_announcing_more_is_an_error(upstream: Start) -> None:
    async def api(request: web.Request) -> web.StreamResponse:
        return raw_json('{"page": 1, "pageSize": 2, "hasMore": true, "totalCount": 9, "data": []}')

    client, _ = await upstream(Upstream(api=api))
    with pytest.raises(TransientError, match="empty yet announces more"):
        async for _ in client.iter_jobs(page_size=2):
            pass


# -- 8. hostile export rows ------------------------------------------------------------------------

HOSTILE = [
    ('{"id": ' + "9" * 5000 + ', "jobNumber": "x", "createdOn": "2026-01-01T00:00:00Z"}', "'id' is not an integer"),
    ('{"id": 9223372036854775808, "createdOn": "2026-01-01T00:00:00Z"}', "'id' is outside"),
    ('{"id": 0, "createdOn": "2026-01-01T00:00:00Z"}', "'id' is outside"),
    ('{"id": -4, "createdOn": "2026-01-01T00:00:00Z"}', "'id' is outside"),
    ('{"id": 8, "customerId": ' + "1" * 5000 + ', "createdOn": "2026-01-01T00:00:00Z"}', "'customerId'"),
    ('{"id": 9, "projectId": 99999999999999999999, "createdOn": "2026-01-01T00:00:00Z"}', "'projectId'"),
    ('{"id": 10, "jobNumber": ' + "7" * 5000 + ', "createdOn": "2026-01-01T00:00:00Z"}', "'jobNumber'"),
    ('{"id": 12, "jobNumber": "x"}', "'createdOn' is missing"),
    ('{"id": 13, "createdOn": "0001-01-01T00:00:00+05:00"}', "'createdOn' is not a timestamp"),
    ('{"id": "13x", "createdOn": "2026-01-01T00:00:00Z"}', "'id' is not an integer"),
    ('"just a string"', "not a JSON object"),
    ("[1, 2, 3]", "not a JSON object"),
]


async def test_hostile_export_rows_are_rejected_one_by_one(upstream: Start) -> None:
    rows = [GOOD_JOB, *(text for text, _ in HOSTILE), GOOD_JOB.replace('"id": 7', '"id": 14')]

    async def api(request: web.Request) -> web.StreamResponse:
        return raw_json('{"hasMore": false, "continueFrom": "next", "data": [' + ", ".join(rows) + "]}")

    client, _ = await upstream(Upstream(api=api))
    started = time.monotonic()
    pages = [page async for page in client.export_jobs("2026-01-01T00:00:00Z")]
    assert time.monotonic() - started < 2.0  # no quadratic int parsing
    [page] = pages
    assert [job.id for job in page.rows] == [7, 14]
    assert page.continue_from == "next"
    assert len(page.rejected) == len(HOSTILE)
    for rejected, (_, reason) in zip(page.rejected, HOSTILE, strict=True):
        assert isinstance(rejected, RejectedRow) and rejected.feed == "jobs"
        assert reason in rejected.reason
        assert rejected.id is None or len(rejected.id) <= 41  # shown cut short, never 5000 digits
    assert page.rejected[1].id == "9223372036854775808"


# -- 10. Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "longest"), [("3600", 0.6), ("inf", 0.5), ("nan", 0.5), ("1e999", 0.5)])
async def test_retry_after_is_clamped_and_junk_ignored(upstream: Start, header: str, longest: float) -> None:
    calls = 0

    async def api(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            return raw_json('{"title": "Rate limit"}', status=429, headers={"Retry-After": header})
        return raw_json(GOOD_JOB)

    client, _ = await upstream(Upstream(api=api), retry_after_max=0.3)
    started = time.monotonic()
    job = await client.get_job(7)
    assert job.id == 7 and calls == 2
    assert time.monotonic() - started < longest  # an hour clamped to 0.3 s; junk: the own backoff (≤ 0.02 s)
