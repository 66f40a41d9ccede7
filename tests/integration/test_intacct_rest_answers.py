"""What the REST client makes of answers no simulator option produces: scripted, one per rule."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from adapters.errors import ConnectionFailure, PermanentError, TransientError
from adapters.intacct import CreateProject, Outcome
from adapters.intacct_rest import IntacctRestClient, RestCredentials

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CREATE = CreateProject("c1", {"PROJECTID": "J-1", "NAME": "n", "PROJECTCATEGORY": "Contract"})


async def _token(request: web.Request) -> web.Response:
    return web.json_response({"access_token": "t", "token_type": "Bearer", "expires_in": 3600})


@pytest.fixture
def scripted(aiohttp_server: AiohttpServer,
             rest_http: aiohttp.ClientSession) -> Callable[..., Awaitable[IntacctRestClient]]:
    async def start(api: Handler, **kwargs: Any) -> IntacctRestClient:
        app = web.Application()
        app.router.add_post("/ia/api/v1/oauth2/token", _token)
        app.router.add_route("*", "/ia/api/v1/{tail:.*}", api)
        server = await aiohttp_server(app, host="127.0.0.1")
        credentials = RestCredentials(str(server.make_url("/ia/api/v1")), "c", "secret-value-7", "u@co")
        return IntacctRestClient(rest_http, credentials, request_timeout=2.0, **kwargs)

    return start


async def test_a_2xx_page_that_is_not_json_is_an_unknown_outcome(scripted: Any) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    client = await scripted(html)
    with pytest.raises(TransientError) as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is True


async def test_a_2xx_without_results_leaves_each_record_transient(scripted: Any) -> None:
    async def empty(request: web.Request) -> web.Response:
        return web.json_response({"ia::meta": {"totalCount": 2}}, status=201)

    client = await scripted(empty)
    second = CreateProject("c2", {"PROJECTID": "J-2", "NAME": "n", "PROJECTCATEGORY": "Contract"})
    results = await client.execute([CREATE, second])
    assert [r.outcome for r in results] == [Outcome.TRANSIENT, Outcome.TRANSIENT]


async def test_redirects_are_not_followed(scripted: Any) -> None:
    followed: list[str] = []

    async def redirect(request: web.Request) -> web.StreamResponse:
        if "elsewhere" in request.path:
            followed.append(request.path)
        raise web.HTTPTemporaryRedirect("http://evil.example/ia/api/v1/elsewhere")

    client = await scripted(redirect)
    with pytest.raises(ConnectionFailure, match="evil.example"):
        await client.probe()
    assert followed == []


async def test_an_endless_body_is_cut_and_transient(scripted: Any) -> None:
    async def huge(request: web.Request) -> web.Response:
        return web.json_response({"ia::result": [{"id": "x" * 5000, "key": "1"}], "ia::meta": {}})

    client = await scripted(huge, max_body_bytes=1000)
    with pytest.raises(TransientError, match="too long") as info:
        await client.read_projects(["J-1"])
    assert info.value.outcome_unknown is True


@pytest.mark.parametrize(("header", "value", "expected"), [
    ("X-IA-Throttle-Limit-RetryAfter", "99999", 30.0), ("Retry-After", "inf", None), ("Retry-After", "3", 3.0),
])
async def test_retry_after_is_clamped(scripted: Any, header: str, value: str, expected: float | None) -> None:
    async def throttled(request: web.Request) -> web.Response:
        return web.json_response({"ia::error": {"code": "GW-0010"}}, status=429, headers={header: value})

    client = await scripted(throttled, retry_after_max=30.0)
    with pytest.raises(TransientError) as info:
        await client.probe()
    assert info.value.retry_after == expected and info.value.outcome_unknown is False


async def test_paging_that_makes_no_progress_is_an_error(scripted: Any) -> None:
    async def stuck(request: web.Request) -> web.Response:
        body = await request.json()
        rows = [] if body["start"] > 1 else [{"key": "1", "id": "J-1"}]
        return web.json_response({"ia::result": rows, "ia::meta": {"totalCount": 10**9, "next": 2}})

    client = await scripted(stuck)
    with pytest.raises(TransientError, match="no progress"):
        _ = [page async for page in client.iter_projects(["J-%"])]


async def test_a_refused_query_is_permanent_and_names_the_field(scripted: Any) -> None:
    async def refused(request: web.Request) -> web.Response:
        detail = {"code": "invalidRequest", "message": "The parent.id field does not exist", "errorId": "REST-1043"}
        body = {"ia::result": {"ia::error": {"code": "invalidRequest", "message": "Payload contains errors",
                                             "errorId": "REST-1064", "details": [detail]}}}
        return web.Response(text=json.dumps(body), status=400, content_type="application/json")

    client = await scripted(refused)
    with pytest.raises(PermanentError, match="parent.id field does not exist") as info:
        await client.read_projects(["J-1"])
    assert "secret-value-7" not in str(info.value)


async def test_a_404_without_an_intacct_error_is_a_wrong_url(scripted: Any) -> None:
    async def nowhere(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")

    client = await scripted(nowhere)
    with pytest.raises(ConnectionFailure, match="check intacct.rest_url"):
        await client.execute([CREATE])
