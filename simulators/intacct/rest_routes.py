"""Routes of the REST API and its ``/_sim/rest`` controls."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from simulators.intacct import rest_records
from simulators.intacct.rest_api import API_PREFIX, REST_STATE, error_body, error_object, json_answer, serve
from simulators.intacct.rest_query import QueryError, run_query
from simulators.intacct.rest_records import RecordError
from simulators.intacct.rest_state import RestState

PROJECTS = f"{API_PREFIX}/objects/projects/project"
routes = web.RouteTableDef()


def _records_in(body: Any) -> int:
    return len(body) if isinstance(body, list) else 1


async def _body_count(request: web.Request) -> int:
    try:
        return _records_in(json.loads(await request.read() or b"null"))
    except ValueError:
        return 1


def _batch(rest: RestState, answers: list[tuple[int, Any]], ok_status: int) -> tuple[int, dict[str, Any]]:
    """One answer for a batch: all good, 207 by position, or (as an option) the first failure for all."""
    failed = [(s, a) for s, a in answers if isinstance(a, RecordError)]
    meta = {"totalCount": len(answers), "totalSuccess": len(answers) - len(failed), "totalError": len(failed)}
    if failed and rest.options.batch_failure == "first_status":
        status, error = failed[0]
        body = error_body(rest, error, meta=False)
        return status, body | {"ia::meta": meta}
    # Per position: the reference of a record that landed, the error and status of one refused.
    items = [{"ia::error": error_object(a), "ia::status": s} if isinstance(a, RecordError) else a
             for s, a in answers]
    return (207 if failed else ok_status), {"ia::result": items, "ia::meta": meta}


def _single(rest: RestState, status: int, answer: Any) -> tuple[int, dict[str, Any]]:
    if isinstance(answer, RecordError):
        return status, error_body(rest, answer)
    return status, {"ia::result": answer, "ia::meta": {"totalCount": 1, "totalSuccess": 1, "totalError": 0}}


def _too_many(rest: RestState, body: Any) -> tuple[int, dict[str, Any]] | None:
    if isinstance(body, list) and (not body or len(body) > rest.options.batch_limit):
        message = f"You can include at most {rest.options.batch_limit} records in a batch request"
        return 400, error_body(rest, RecordError(400, "invalidRequest", message, "REST-1064"))
    if body is None:
        return 400, error_body(rest, RecordError(400, "invalidRequest", "A POST request requires a payload",
                                                 "REST-1028"))
    return None


async def _create(request: web.Request, rest: RestState, body: Any) -> tuple[int, dict[str, Any]]:
    refused = _too_many(rest, body)
    if refused:
        return refused
    if isinstance(body, list):
        return _batch(rest, [rest_records.create(rest, item) for item in body], 201)
    return _single(rest, *rest_records.create(rest, body))


async def _patch_many(request: web.Request, rest: RestState, body: Any) -> tuple[int, dict[str, Any]]:
    refused = _too_many(rest, body)
    if refused:
        return refused
    items = body if isinstance(body, list) else [body]
    answers = [rest_records.update(rest, str(i.get("key")) if isinstance(i, dict) and i.get("key") else None, i)
               for i in items]
    return _batch(rest, answers, 200)


async def _patch_one(request: web.Request, rest: RestState, body: Any) -> tuple[int, dict[str, Any]]:
    if body is None:
        return 400, error_body(rest, RecordError(400, "invalidRequest", "A PATCH request requires a payload",
                                                 "REST-1028"))
    return _single(rest, *rest_records.update(rest, request.match_info["key"], body))


async def _get_one(request: web.Request, rest: RestState, body: Any) -> tuple[int, dict[str, Any]]:
    project = rest.by_key(request.match_info["key"])
    if project is None:
        error = RecordError(404, "notFound", "Specified resource does not exist", "REST-1005")
        return 404, error_body(rest, error)
    return 200, {"ia::result": rest_records.get(rest, project),
                 "ia::meta": {"totalCount": 1, "totalSuccess": 1, "totalError": 0}}


async def _query(request: web.Request, rest: RestState, body: Any) -> tuple[int, dict[str, Any]]:
    rest.company.stats.functions["query"] += 1
    try:
        rows, meta = run_query(body, list(rest.company.projects), rest.options)
    except QueryError as exc:
        detail = {"code": "invalidRequest", "message": exc.message, "errorId": exc.error_id, "target": exc.target}
        return 400, error_body(rest, RecordError(400, "invalidRequest", "Payload contains errors", "REST-1064",
                                                 (detail,)))
    return 200, {"ia::result": rows, "ia::meta": meta}


@routes.post(PROJECTS)
async def create_projects(request: web.Request) -> web.StreamResponse:
    """Create one project (an object) or a batch (an array)."""
    return await serve(request, _create, records=await _body_count(request))


@routes.patch(PROJECTS)
async def update_projects(request: web.Request) -> web.StreamResponse:
    """Update a batch (an array, each element with its key)."""
    return await serve(request, _patch_many, records=await _body_count(request))


@routes.patch(PROJECTS + "/{key}")
async def update_project(request: web.Request) -> web.StreamResponse:
    """Update one project by key."""
    return await serve(request, _patch_one)


@routes.get(PROJECTS + "/{key}")
async def get_project(request: web.Request) -> web.StreamResponse:
    """One project, nested."""
    return await serve(request, _get_one)


@routes.post(f"{API_PREFIX}/services/core/query")
async def query(request: web.Request) -> web.StreamResponse:
    """The query service."""
    return await serve(request, _query)


@routes.post(f"{API_PREFIX}/oauth2/token")
async def token(request: web.Request) -> web.Response:
    """Client credentials grant (form or JSON body), as the token endpoint answers it."""
    rest = request.app[REST_STATE]
    company = rest.company
    if company.chance(company.faults.rate_limit_rate):
        company.stats.faults["rate_limit"] += 1
        return json_answer(429, {"ia::error": {"code": "GW-0010", "message": "API rate limit exceeded"}},
                     {"X-IA-Throttle-Limit-RetryAfter": f"{company.faults.retry_after:g}"})
    if request.content_type == "application/json":
        try:
            raw = await request.json()
        except ValueError:
            raw = None
        form = {k: str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    else:
        form = {k: str(v) for k, v in (await request.post()).items()}
    o = rest.options
    if form.get("grant_type") != "client_credentials":
        return json_answer(400, {"error": "unsupported_grant_type", "error_description": "Invalid Token Payload"})
    username = form.get("username", "")
    if not username:
        return json_answer(400, {"ia::error": {"code": "GW-0036", "message": "Missing User Name"}})
    if "@" not in username:
        return json_answer(400, {"ia::error": {"code": "GW-0012", "message": "Missing Tenant Data"}})
    user, _, entity = username.partition("|")
    checks = ((o.client_id, form.get("client_id", "")), (o.client_secret, form.get("client_secret", "")))
    if any(not given or (want is not None and given != want) for want, given in checks):
        company.stats.auth_failures += 1
        return json_answer(401, {"error": "invalid_client", "error_description":
                           "The Client ID, Client Secret, and/or 3rd Party Application are incorrect (REST-1216)"})
    if o.username is not None and user != o.username:
        company.stats.auth_failures += 1
        return json_answer(400, {"error": "invalid_grant", "error_description": "Sign-in information is incorrect"})
    value = rest.mint(user, entity or None)
    return json_answer(200, {"access_token": value, "token_type": "Bearer", "expires_in": int(o.token_ttl),
                       "refresh_token": "r-" + value[-16:]})


# -- /_sim/rest controls -------------------------------------------------------------------------


@routes.get("/_sim/rest/options")
async def get_options(request: web.Request) -> web.Response:
    """The REST options in force (credential values hidden)."""
    return web.json_response(request.app[REST_STATE].options.public())


@routes.put("/_sim/rest/options")
async def put_options(request: web.Request) -> web.Response:
    """Change any subset of the REST options."""
    rest = request.app[REST_STATE]
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("options must be a JSON object")
        rest.options = rest.options.changed(body)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(rest.options.public())


@routes.post("/_sim/rest/tokens/revoke")
async def revoke(request: web.Request) -> web.Response:
    """Revoke every access token (the next call answers "invalid token")."""
    return web.json_response({"revoked": request.app[REST_STATE].revoke_all()})


@routes.post("/_sim/rest/tokens/expire")
async def expire(request: web.Request) -> web.Response:
    """Expire every access token now."""
    return web.json_response({"expired": request.app[REST_STATE].expire_all()})


@routes.get("/_sim/rest/stats")
async def stats(request: web.Request) -> web.Response:
    """REST counters (tokens minted, replays answered, idempotency conflicts, requests)."""
    rest = request.app[REST_STATE]
    return web.json_response(rest.counters | {"tokens": len(rest.tokens), "idempotency_keys": len(rest.replays)})


@routes.post("/_sim/rest/reset")
async def reset(request: web.Request) -> web.Response:
    """Forget tokens and keys; options back to their start (the company's data stays)."""
    request.app[REST_STATE].reset()
    return web.Response(status=204)
