"""The control API under ``/_sim/``: data, faults, credentials, tokens and statistics."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulators.servicetitan.problems import json_response
from simulators.servicetitan.records import render_customer, render_job, render_project
from simulators.servicetitan.state import STATE
from simulators.servicetitan.tenant import InputError, TenantData, UnknownRecord

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_KINDS = ("customers", "projects", "jobs")


def add_routes(app: web.Application) -> None:
    """Register the control routes (route names start with ``sim.``)."""
    r = app.router
    base = "/_sim/tenant/{tenant:\\d+}"
    for kind in _KINDS:
        r.add_post(f"{base}/{kind}", _create(kind), name=f"sim.{kind}.create")
        r.add_patch(f"{base}/{kind}/{{id:\\d+}}", _update(kind), name=f"sim.{kind}.update")
        r.add_get(f"{base}/{kind}/{{id:\\d+}}", _show(kind), name=f"sim.{kind}.show")
    r.add_post(f"{base}/bulk", bulk, name="sim.bulk")
    r.add_post(f"{base}/hostile-rows", hostile_rows, name="sim.hostile_rows")
    r.add_get(f"{base}/summary", summary, name="sim.summary")
    r.add_get("/_sim/tenants", tenants, name="sim.tenants")
    r.add_get("/_sim/faults", get_faults, name="sim.faults.get")
    r.add_put("/_sim/faults", put_faults, name="sim.faults.put")
    r.add_delete("/_sim/faults", delete_faults, name="sim.faults.delete")
    r.add_put("/_sim/credentials", put_credentials, name="sim.credentials")
    r.add_post("/_sim/expire-tokens", expire_tokens, name="sim.expire_tokens")
    r.add_get("/_sim/stats", get_stats, name="sim.stats.get")
    r.add_delete("/_sim/stats", delete_stats, name="sim.stats.delete")
    r.add_get("/_sim/requests", recent_requests, name="sim.requests")


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    return json_response({"error": message, "field": field}, status=status)


async def _body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except ValueError:
        raise InputError("body", "is not valid JSON") from None


def _tenant(request: web.Request) -> TenantData:
    return request.app[STATE].tenant(int(request.match_info["tenant"]))


def _render(kind: str, record: Any) -> dict[str, Any]:
    if kind == "jobs":
        return render_job(record, export=True)
    if kind == "projects":
        return render_project(record, export=True)
    return render_customer(record)


@web.middleware
async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn refused control documents into 400 and unknown ids into 404, as JSON."""
    try:
        return await handler(request)
    except InputError as exc:
        if (request.match_info.route.name or "").startswith("sim."):
            return _error(400, exc.message, exc.field)
        raise
    except UnknownRecord as exc:
        if (request.match_info.route.name or "").startswith("sim."):
            return _error(404, str(exc.args[0]) if exc.args else "not found")
        raise


_MAX_RAW_ROW = 1024 * 1024


async def hostile_rows(request: web.Request) -> web.Response:
    """``{"feed": "jobs"|"projects", "rows": ["<raw JSON>", ...]}``: the next page of that feed carries them once.

    Rows are JSON texts kept byte for byte, so that they may hold what no JSON library writes from
    a Python value: an id of 5000 digits, or of 2^63.
    """
    body = await _body(request)
    feed = body.get("feed") if isinstance(body, dict) else None
    rows = body.get("rows") if isinstance(body, dict) else None
    if feed not in ("jobs", "projects"):
        raise InputError("feed", "must be 'jobs' or 'projects'")
    if not isinstance(rows, list) or not all(isinstance(r, str) for r in rows):
        raise InputError("rows", "must be a list of JSON texts")
    for row in rows:
        if len(row) > _MAX_RAW_ROW:
            raise InputError("rows", f"a row is limited to {_MAX_RAW_ROW} characters")
        try:
            json.loads(row, parse_int=str)  # valid JSON (however large its numbers), or refused
        except ValueError:
            raise InputError("rows", f"not a JSON text: {row[:40]!r}") from None
    queue = _tenant(request).hostile_rows[feed]
    queue.extend(rows)
    return json_response({"feed": feed, "queued": len(queue)}, status=201)


def _create(kind: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        tenant = _tenant(request)
        doc = await _body(request)
        if not isinstance(doc, dict):
            raise InputError("body", "must be a JSON object")
        create = {"customers": tenant.create_customer, "projects": tenant.create_project,
                  "jobs": tenant.create_job}[kind]  # fmt: skip
        return json_response(_render(kind, create(doc)), status=201)

    return handler


def _update(kind: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        tenant = _tenant(request)
        doc = await _body(request)
        if not isinstance(doc, dict):
            raise InputError("body", "must be a JSON object")
        update = {"customers": tenant.update_customer, "projects": tenant.update_project,
                  "jobs": tenant.update_job}[kind]  # fmt: skip
        return json_response(_render(kind, update(int(request.match_info["id"]), doc)))

    return handler


def _show(kind: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        record_id = int(request.match_info["id"])
        record = getattr(_tenant(request), kind).get(record_id)
        if record is None:
            raise UnknownRecord(f"{kind[:-1]} {record_id} does not exist")
        return json_response(_render(kind, record))

    return handler


async def bulk(request: web.Request) -> web.StreamResponse:
    """``POST /_sim/tenant/{t}/bulk``: many customers, projects and jobs in one call."""
    doc = await _body(request)
    if not isinstance(doc, dict):
        raise InputError("body", "must be a JSON object")
    return json_response(_tenant(request).bulk(doc), status=201)


async def summary(request: web.Request) -> web.StreamResponse:
    """``GET /_sim/tenant/{t}/summary``: record and change counts."""
    return json_response(_tenant(request).summary())


async def tenants(request: web.Request) -> web.StreamResponse:
    """``GET /_sim/tenants``: the summary of every tenant holding data."""
    state = request.app[STATE]
    return json_response([state.tenants[t].summary() for t in sorted(state.tenants)])


async def get_faults(request: web.Request) -> web.StreamResponse:
    """``GET /_sim/faults``."""
    return json_response(request.app[STATE].faults.as_json())


async def put_faults(request: web.Request) -> web.StreamResponse:
    """``PUT /_sim/faults``: change the named faults, keep the others."""
    state = request.app[STATE]
    doc = await _body(request)
    if not isinstance(doc, dict):
        raise InputError("body", "must be a JSON object")
    try:
        state.set_faults(doc)
    except ValueError as exc:
        raise InputError("faults", str(exc)) from None
    return json_response(state.faults.as_json())


async def delete_faults(request: web.Request) -> web.StreamResponse:
    """``DELETE /_sim/faults``: back to no faults."""
    state = request.app[STATE]
    state.reset_faults()
    return json_response(state.faults.as_json())


async def put_credentials(request: web.Request) -> web.StreamResponse:
    """``PUT /_sim/credentials``: ``client_id``, ``client_secret``, ``app_key`` (null = accept any)."""
    state = request.app[STATE]
    doc = await _body(request)
    if not isinstance(doc, dict):
        raise InputError("body", "must be a JSON object")
    for name in doc:
        if name not in ("client_id", "client_secret", "app_key"):
            raise InputError(name, "unknown credential (client_id, client_secret, app_key)")
        if doc[name] is not None and not (isinstance(doc[name], str) and doc[name]):
            raise InputError(name, "must be a non-empty string or null")
        setattr(state.credentials, name, doc[name])
    return json_response({name: getattr(state.credentials, name) is not None for name in
                          ("client_id", "client_secret", "app_key")})  # fmt: skip


async def expire_tokens(request: web.Request) -> web.StreamResponse:
    """``POST /_sim/expire-tokens``: every issued token is refused from now on."""
    return json_response({"expired": request.app[STATE].expire_tokens()})


async def get_stats(request: web.Request) -> web.StreamResponse:
    """``GET /_sim/stats``."""
    return json_response(request.app[STATE].stats.as_json())


async def delete_stats(request: web.Request) -> web.StreamResponse:
    """``DELETE /_sim/stats``: zero the counters."""
    state = request.app[STATE]
    state.reset_stats()
    return json_response(state.stats.as_json())


async def recent_requests(request: web.Request) -> web.StreamResponse:
    """``GET /_sim/requests?limit=N``: the last API requests with their raw query strings."""
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise InputError("limit", "must be an integer") from None
    items = list(request.app[STATE].recent_requests)[-max(0, limit) :] if limit > 0 else []
    return json_response(items)
