"""Every request the REST client sends, and every answer the simulator gives it, checked against
Sage's OpenAPI documents (the excerpt in tests/fixtures/intacct_rest/).

The documents are OpenAPI 3.0: ``nullable`` is turned into a JSON Schema null type before
validating, and properties marked ``readOnly`` must not appear in a request body (except ``key`` in
the elements of a batch PATCH, where Sage's bulk-requests guide puts it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
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
from tests.plugins.intacct_rest import RestSim

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "intacct_rest" / "sage-intacct-rest-excerpt.json"
Exchange = dict[str, Any]


@cache
def _spec() -> dict[str, Any]:
    return _nullable(json.loads(SPEC.read_text(encoding="utf-8")))


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _nullable(v) for k, v in node.items()}
        if out.pop("nullable", False) and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


def _resolve(schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = _spec()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _check(schema: Any, body: Any, what: str) -> None:
    validator = Draft7Validator({**copy.deepcopy(schema), "components": _spec()["components"]})
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, what + ": " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def _read_only(schema: Any, body: Any, path: str = "") -> list[str]:
    schema = _resolve(schema)
    found: list[str] = []
    if isinstance(schema, dict) and "allOf" in schema:
        for part in schema["allOf"]:
            found += _read_only(part, body, path)
        return sorted(set(found))
    if not isinstance(body, dict) or not isinstance(schema, dict):
        return found
    for name, value in body.items():
        prop = _resolve(schema.get("properties", {}).get(name, {}))
        if prop.get("readOnly"):
            found.append(f"{path}/{name}")
        else:
            found += _read_only(prop, value, f"{path}/{name}")
    return found


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    rest = path.removeprefix("/ia/api/v1")
    template = "/objects/projects/project/{key}" if rest.startswith("/objects/projects/project/") else rest
    if (method, template) == ("PATCH", "/objects/projects/project"):
        # A batch PATCH: the document declares single-record bodies only; each element is one of those.
        template = "/objects/projects/project/{key}"
    return template, _spec()["paths"][template][method.lower()]


def _check_filters(request: Any) -> None:
    """Each filter against the operator it names (the document's anyOf alone accepts any object)."""
    alternatives = _resolve({"$ref": "#/components/schemas/core-query"})["properties"]["filters"]["items"]["anyOf"]
    by_operator = {next(iter(a["properties"])): a for a in alternatives}
    for item in request.get("filters", []):
        assert isinstance(item, dict) and len(item) == 1, f"a filter names one operator: {item}"
        [operator] = item
        assert operator in by_operator, f"request of the query: unknown operator {operator}"
        _check({**by_operator[operator], "required": [operator]}, item, f"request of the query ({operator})")


def check_exchange(x: Exchange) -> None:
    """One request and its answer against the documents."""
    template, op = _operation(x["method"], x["path"])
    name = f'{x["method"]} {template}'
    if x["request"] is not None:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        items = x["request"] if isinstance(x["request"], list) else [x["request"]]
        for item in items:
            _check(schema, item, f"request of {name}")
            allowed = ["/key"] if isinstance(x["request"], list) and x["method"] == "PATCH" else []
            assert [p for p in _read_only(schema, item) if p not in allowed] == [], f"read-only field sent to {name}"
        if template == "/services/core/query":
            _check_filters(x["request"])
    status = str(x["status"])
    batch = isinstance(x["request"], list)
    if status == "207" or (batch and isinstance(x["response"], dict)
                           and isinstance(x["response"].get("ia::result"), list)):
        reference = {"$ref": "#/components/schemas/object-reference"}
        for item in x["response"]["ia::result"]:
            _check(reference if "ia::error" not in item else {"type": "object"}, item, f"batch item of {name}")
        _check({"$ref": "#/components/schemas/metadata"}, x["response"]["ia::meta"], f"meta of {name}")
        return
    responses = op["responses"]
    spec_status = status if status in responses else "400"
    answer = responses[spec_status]
    if "$ref" in answer:
        answer = _spec()["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    _check(answer["content"]["application/json"]["schema"], x["response"], f"{status} answer of {name}")


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


@pytest.mark.parametrize("envelope", ["nested", "top"])
async def test_client_requests_and_simulator_answers_match_the_documents(
    recorded: tuple[RestSim, list[Exchange]], envelope: str
) -> None:
    sim, log = recorded
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
    for exchange in log:
        check_exchange(exchange)


def test_the_checks_catch_a_bad_request() -> None:
    bad_create = {"method": "POST", "path": "/ia/api/v1/objects/projects/project",
                  "request": {"id": "J-1", "name": "n", "category": "Contract"}, "status": 201,
                  "response": {"ia::result": {"key": "1", "id": "J-1"}}}
    with pytest.raises(AssertionError, match="request"):
        check_exchange(bad_create)
    renaming_patch = {"method": "PATCH", "path": "/ia/api/v1/objects/projects/project/1",
                      "request": {"id": "J-2"}, "status": 200, "response": {"ia::result": {"key": "1"}}}
    with pytest.raises(AssertionError, match="read-only"):
        check_exchange(renaming_patch)
    numeric_key = {"method": "POST", "path": "/ia/api/v1/objects/projects/project", "status": 201,
                   "request": {"id": "J-1", "name": "n", "category": "contract"},
                   "response": {"ia::result": {"key": 1, "id": "J-1"}}}
    with pytest.raises(AssertionError, match="answer"):
        check_exchange(numeric_key)
    like_query = {"method": "POST", "path": "/ia/api/v1/services/core/query", "status": 200,
                  "request": {"object": "projects/project", "fields": ["id"], "filters": [{"$like": {"id": 1}}]},
                  "response": {"ia::result": [], "ia::meta": {"totalCount": 0}}}
    with pytest.raises(AssertionError, match="unknown operator"):
        check_exchange(like_query)
    like_query["request"]["filters"] = [{"$in": {"id": "J-1"}}]  # $in wants an array
    with pytest.raises(AssertionError, match="request"):
        check_exchange(like_query)
