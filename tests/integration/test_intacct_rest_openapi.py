"""Every request the REST client sends, and every answer the simulator gives it, checked against the
wire contract in tests/contracts/intacct_rest.py, and also against Sage's own OpenAPI documents when
``ST_INTACCT_SYNC_SAGE_OPENAPI_DIR`` points at them (see tests/contracts/sage_openapi.py).

Requests must not carry read-only fields (except ``key`` in the elements of a batch PATCH, where
Sage's bulk-requests guide puts it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from jsonschema import Draft7Validator
from pytest_aiohttp import AiohttpServer

from adapters.intacct import CreateProject, QueryProjects, UpdateProject
from adapters.intacct_rest import IntacctRestClient
from simulators.intacct import STATE, IntacctSimOptions, create_app
from simulators.intacct.rest_api import REST_STATE
from tests.contracts import intacct_rest as contract
from tests.contracts import sage_openapi as sage
from tests.plugins.intacct_rest import RestSim

Exchange = dict[str, Any]
PROJECTS = "/objects/projects/project"
QUERY = "/services/core/query"


def _check(schema: Any, body: Any, what: str) -> None:
    errors = sorted(Draft7Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, what + ": " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def _check_operators(request: Any) -> None:
    for item in request.get("filters", []) if isinstance(request, dict) else []:
        assert isinstance(item, dict) and len(item) == 1, f"a filter names one operator: {item}"
        [operator] = item
        assert operator in contract.FILTER_OPERATORS, f"request of the query: unknown operator {operator}"


def _route(method: str, path: str) -> str:
    rest = path.removeprefix("/ia/api/v1")
    return f"{method} {PROJECTS}/{{key}}" if rest.startswith(PROJECTS + "/") else f"{method} {rest}"


def check_contract(x: Exchange) -> None:
    """One request and its answer against our contract."""
    name = _route(x["method"], x["path"])
    request, batch = x["request"], isinstance(x["request"], list)
    item_schema = {f"POST {PROJECTS}": contract.PROJECT_CREATE,
                   f"PATCH {PROJECTS}": contract.PROJECT_BATCH_UPDATE_ITEM,
                   f"PATCH {PROJECTS}/{{key}}": contract.PROJECT_UPDATE,
                   f"POST {QUERY}": contract.QUERY_REQUEST}.get(name)
    if request is not None:
        assert item_schema is not None, f"a request body sent to {name}"
        if name == f"POST {QUERY}":
            _check_operators(request)
        _check(contract.batch(item_schema) if batch else item_schema, request, f"request of {name}")
        for item in request if batch else [request]:
            assert contract.read_only_sent(item_schema, item) == [], f"read-only field sent to {name}"
    response, status = x["response"], x["status"]
    if status >= 400:
        schema = contract.ERROR_ANSWER
    elif batch or status == 207:
        schema = contract.BATCH_ANSWER
    elif name == f"POST {QUERY}":
        schema = contract.QUERY_ANSWER
    elif name == f"GET {PROJECTS}/{{key}}":
        schema = contract.PROJECT_ANSWER
    else:
        schema = contract.WRITE_ANSWER
    _check(schema, response, f"{status} answer of {name}")


def check_sage(x: Exchange) -> None:
    """One request and its answer against Sage's documents."""
    template, op = sage.operation(x["method"], x["path"])
    name = f'{x["method"]} {template}'
    if x["request"] is not None:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        batch = isinstance(x["request"], list)
        for item in x["request"] if batch else [x["request"]]:
            _check(sage.with_components(schema), item, f"request of {name}")
            allowed = ["/key"] if batch and x["method"] == "PATCH" else []
            assert [p for p in sage.read_only_sent(schema, item) if p not in allowed] == [], \
                f"read-only field sent to {name}"
        if template == QUERY:
            _check_operators(x["request"])
    status = str(x["status"])
    result = x["response"].get("ia::result") if isinstance(x["response"], dict) else None
    if status == "207" or (isinstance(x["request"], list) and isinstance(result, list)):
        # The documents declare single-record bodies only; each element of a batch is one of those.
        for item in x["response"]["ia::result"]:
            reference = {"$ref": "#/components/schemas/object-reference"} if "ia::error" not in item else {}
            _check(sage.with_components(reference), item, f"batch item of {name}")
        _check(sage.with_components({"$ref": "#/components/schemas/metadata"}), x["response"]["ia::meta"],
               f"meta of {name}")
        return
    responses = op["responses"]
    answer = sage.resolve(responses[status if status in responses else "400"])
    _check(sage.with_components(answer["content"]["application/json"]["schema"]), x["response"],
           f"{status} answer of {name}")


def recorder(log: list[Exchange]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def record(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        raw = await request.read()
        response = await handler(request)
        if request.path.startswith("/ia/api/v1/") and "/oauth2/" not in request.path \
                and isinstance(response, web.Response) and response.content_type == "application/json":
            log.append({"method": request.method, "path": request.path,
                        "request": json.loads(raw) if raw else None, "status": response.status,
                        "response": json.loads(response.body)})  # type: ignore[arg-type]
        return response

    return record


@pytest.fixture
async def recorded(aiohttp_server: AiohttpServer) -> tuple[RestSim, list[Exchange]]:
    log: list[Exchange] = []
    app = create_app(IntacctSimOptions(seed_customers=("C1", "C2")))
    app.middlewares.append(recorder(log))
    server = await aiohttp_server(app, host="127.0.0.1")
    return RestSim(server, app[STATE], app[REST_STATE]), log


def create(n: int, **fields: str | None) -> CreateProject:
    values: dict[str, str | None] = {"PROJECTID": f"J-{n}", "NAME": f"Job {n}", "PROJECTCATEGORY": "Contract"}
    return CreateProject(f"c{n}", values | fields)


async def exchanges(sim: RestSim, log: list[Exchange], envelope: str) -> list[Exchange]:
    """Every kind of exchange the client has with the REST API, as the simulator answers them."""
    sim.set_options(error_envelope=envelope)
    async with aiohttp.ClientSession() as http:
        client = IntacctRestClient(http, sim.credentials(entity_id="E1"), request_timeout=5.0)
        await client.probe()
        await client.execute([create(1), create(2, CUSTOMERID="C1", PARENTID="J-1"), create(3, CUSTOMERID="NOPE")])
        await client.execute([create(4)])
        await client.execute([create(1)])  # already exists
        await client.execute([UpdateProject("u1", "J-1", {"NAME": "x", "STATUS": "inactive"}),
                              UpdateProject("u2", "J-2", {"PARENTID": None, "CUSTOMERID": "C2"})])
        await client.execute([UpdateProject("u3", "J-2", {"NAME": "y"})])
        await client.read_projects(["J-1", "J-2", "J-9"])
        _ = [p async for p in client.iter_projects(["J-%", "P-%", "%X%", "J-1_"], page_size=2)]
        await client.execute([QueryProjects("q", ("J-%",), page_size=2, offset=2)])
        async with http.get(sim.base_url + "/objects/projects/project/1",
                            headers={"Authorization": f"Bearer {client._transport.tokens._token.value}"}  # type: ignore[union-attr]
                            ) as r:
            log.append({"method": "GET", "path": "/ia/api/v1/objects/projects/project/1", "request": None,
                        "status": r.status, "response": await r.json()})
    kinds = {(x["method"], x["status"]) for x in log}
    assert {("POST", 201), ("POST", 207), ("POST", 409), ("PATCH", 200), ("POST", 200), ("GET", 200)} <= kinds
    return log


@pytest.mark.parametrize("envelope", ["nested", "top"])
async def test_client_requests_and_simulator_answers_match_the_contract(
    recorded: tuple[RestSim, list[Exchange]], envelope: str
) -> None:
    for exchange in await exchanges(*recorded, envelope):
        check_contract(exchange)


@pytest.mark.parametrize("envelope", ["nested", "top"])
async def test_client_requests_and_simulator_answers_match_sages_documents(
    recorded: tuple[RestSim, list[Exchange]], envelope: str
) -> None:
    reason = sage.missing()
    if reason:
        pytest.skip(reason)
    for exchange in await exchanges(*recorded, envelope):
        check_sage(exchange)


def _post(path: str, request: Any, status: int, response: Any, method: str = "POST") -> Exchange:
    return {"method": method, "path": "/ia/api/v1" + path, "request": request, "status": status,
            "response": response}


CREATED = {"ia::result": {"key": "1", "id": "J-1"}, "ia::meta": {"totalCount": 1}}
NO_ROWS = {"ia::result": [], "ia::meta": {"totalCount": 0, "start": 1, "pageSize": 100, "next": None,
                                          "previous": None}}


def test_the_contract_catches_a_bad_request_or_answer() -> None:
    good = {"id": "J-1", "name": "n", "category": "contract"}
    check_contract(_post(PROJECTS, good, 201, CREATED))
    with pytest.raises(AssertionError, match="request"):  # the XML category value
        check_contract(_post(PROJECTS, good | {"category": "Contract"}, 201, CREATED))
    with pytest.raises(AssertionError, match="request"):  # a misspelt field
        check_contract(_post(PROJECTS, good | {"parentId": "P-1"}, 201, CREATED))
    with pytest.raises(AssertionError, match="read-only"):
        check_contract(_post(PROJECTS + "/1", {"id": "J-2"}, 200, CREATED, "PATCH"))
    with pytest.raises(AssertionError, match="read-only"):
        check_contract(_post(PROJECTS + "/1", {"key": "1", "name": "n"}, 200, CREATED, "PATCH"))
    batch_answer = {"ia::result": [{"key": "1"}], "ia::meta": {"totalCount": 1}}
    check_contract(_post(PROJECTS, [{"key": "1", "name": "n"}], 200, batch_answer, "PATCH"))
    with pytest.raises(AssertionError, match="request"):  # a batch PATCH element names its record
        check_contract(_post(PROJECTS, [{"name": "n"}], 200, batch_answer, "PATCH"))
    with pytest.raises(AssertionError, match="answer"):
        check_contract(_post(PROJECTS, good, 201, {"ia::result": {"key": 1, "id": "J-1"}, "ia::meta": {}}))
    with pytest.raises(AssertionError, match="answer"):
        check_contract(_post(PROJECTS, good, 409, {"ia::result": {"ia::error": {"code": "x"}}}))
    query = {"object": "projects/project", "fields": ["id"], "filters": [{"$like": {"id": "J-%"}}]}
    with pytest.raises(AssertionError, match="unknown operator"):
        check_contract(_post(QUERY, query, 200, NO_ROWS))
    with pytest.raises(AssertionError, match="request"):  # $in wants an array
        check_contract(_post(QUERY, query | {"filters": [{"$in": {"id": "J-1"}}]}, 200, NO_ROWS))
    with pytest.raises(AssertionError, match="request"):  # refused outside filterParameters
        check_contract(_post(QUERY, query | {"filters": [], "includePrivate": False}, 200, NO_ROWS))
    with pytest.raises(AssertionError, match="answer"):  # paging without next
        check_contract(_post(QUERY, query | {"filters": []}, 200,
                             {"ia::result": [], "ia::meta": {"totalCount": 0, "start": 1, "pageSize": 100}}))
    with pytest.raises(AssertionError, match="answer"):
        check_contract(_post(PROJECTS + "/1", None, 200,
                             {"ia::result": {"key": "1", "id": "J-1", "status": "closed"}, "ia::meta": {}}, "GET"))
