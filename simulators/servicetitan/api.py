"""ServiceTitan's wire: the token endpoint and the JPM/CRM API paths the daemon calls."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from simulators.servicetitan.faults import Faults
from simulators.servicetitan.feeds import export_page, list_page
from simulators.servicetitan.problems import json_response, problem
from simulators.servicetitan.records import render_customer, render_job, render_project
from simulators.servicetitan.state import STATE, SimState
from simulators.servicetitan.tenant import InputError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

GRANTED_SCOPE = "tn.jpm.jobs:r tn.jpm.projects:r tn.crm.customers:r"


def add_routes(app: web.Application) -> None:
    """Register the token endpoint and the API paths (route names starting ``api.`` get faults)."""
    r = app.router
    r.add_post("/connect/token", token, name="token")
    jpm, crm = "/jpm/v2/tenant/{tenant:\\d+}", "/crm/v2/tenant/{tenant:\\d+}"
    r.add_get(f"{jpm}/export/jobs", _export("jobs"), name="api.export.jobs")
    r.add_get(f"{jpm}/export/projects", _export("projects"), name="api.export.projects")
    r.add_get(f"{jpm}/jobs", _list("jobs"), name="api.jobs.list")
    r.add_get(f"{jpm}/jobs/{{id:\\d+}}", _get("jobs"), name="api.jobs.get")
    r.add_get(f"{jpm}/projects", _list("projects"), name="api.projects.list")
    r.add_get(f"{jpm}/projects/{{id:\\d+}}", _get("projects"), name="api.projects.get")
    r.add_get(f"{crm}/customers", _list("customers"), name="api.customers.list")
    r.add_get(f"{crm}/customers/{{id:\\d+}}", _get("customers"), name="api.customers.get")


# ---------------------------------------------------------------------------- token


def _oauth_error(code: str, status: int = 400) -> web.Response:
    return web.json_response({"error": code}, status=status)


async def token(request: web.Request) -> web.Response:
    """``POST /connect/token``: OAuth2 client credentials, form-encoded."""
    state = request.app[STATE]
    if _next(state.faults, "token_redirect_next"):
        state.stats.redirects_injected += 1
        return web.Response(status=307, headers={"Location": state.faults.redirect_location})
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        state.stats.token_refusals += 1
        return _oauth_error("unsupported_grant_type")
    if "scope" in form:
        # Scopes come from the app registration; a client asking for one gets invalid_scope.
        state.stats.token_refusals += 1
        return _oauth_error("invalid_scope")
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    if not (isinstance(client_id, str) and isinstance(client_secret, str)) or not state.client_allowed(
        client_id, client_secret
    ):
        state.stats.token_refusals += 1
        return _oauth_error("invalid_client")
    access_token, ttl = state.issue_token()
    return web.json_response(
        {"access_token": access_token, "expires_in": ttl, "token_type": "Bearer", "scope": GRANTED_SCOPE}
    )


# ---------------------------------------------------------------------------- faults and auth


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts, authenticates and injects faults into API calls; leaves other routes alone."""
    state = request.app[STATE]
    route = request.match_info.route.name or "unmatched"
    state.stats.requests[route] += 1
    if not route.startswith("api."):
        return await handler(request)
    state.recent_requests.append(
        {"route": route, "path": request.path, "query": request.rel_url.raw_query_string, "at": time.time()}
    )
    state.stats.in_flight += 1
    state.stats.max_in_flight = max(state.stats.max_in_flight, state.stats.in_flight)
    try:
        response = await _faulty(request, handler, state)
    finally:
        # Read `state.stats` again: a reset during the request replaced the object.
        state.stats.in_flight -= 1
    state.stats.statuses[response.status] += 1
    return response


async def _faulty(request: web.Request, handler: Handler, state: SimState) -> web.StreamResponse:
    faults, stats, rng = state.faults, state.stats, state.rng
    app_key = request.headers.get("ST-App-Key")
    if not state.app_key_allowed(app_key) or not state.token_valid(request.headers.get("Authorization")):
        stats.unauthorized += 1
        return problem(401, "Unauthorized", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if faults.forbidden:
        stats.forbidden += 1
        return problem(403, "The application is not connected to this tenant or lacks the scope.")
    wait = state.rate_limit_wait(app_key or "", int(request.match_info["tenant"]))
    if wait > 0:
        stats.rate_limited_bucket += 1
        return _too_many(max(1, math.ceil(wait)), faults.retry_after_http_date)
    if _next(faults, "rate_limit_next") or (faults.rate_limit_rate and rng.random() < faults.rate_limit_rate):
        stats.rate_limited_injected += 1
        return _too_many(faults.retry_after, faults.retry_after_http_date)
    if _next(faults, "redirect_next"):
        stats.redirects_injected += 1
        return web.Response(status=307, headers={"Location": faults.redirect_location})
    if faults.latency:
        await asyncio.sleep(faults.latency)
    if _next(faults, "timeout_next") or (faults.timeout_rate and rng.random() < faults.timeout_rate):
        stats.timeouts_injected += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.stopping.wait(), faults.hang_seconds)
        return problem(504, "The upstream service did not answer in time.")
    if _next(faults, "error_next") or (faults.error_rate and rng.random() < faults.error_rate):
        stats.errors_injected += 1
        return problem(faults.error_status, "An unexpected error occurred. Try again later.")
    route = request.match_info.route.name or ""
    if route.startswith(("api.export.", "api.jobs.list", "api.projects.list")) and _next(faults, "oversize_next"):
        stats.oversized_injected += 1
        return await _oversized(request, faults.oversize_bytes)
    try:
        return await handler(request)
    except InputError as exc:
        return problem(400, "One or more validation errors occurred.", errors={exc.field: [exc.message]})


async def _oversized(request: web.Request, size: int) -> web.StreamResponse:
    """A page of ``size`` bytes (valid JSON, padded with spaces), streamed without a length."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    head, tail = b'{"hasMore": false, "continueFrom": "", "data": [', b"]}"
    chunk = b" " * (1024 * 1024)
    sent = len(head) + len(tail)
    try:
        await response.write(head)
        while sent < size:
            piece = chunk[: min(len(chunk), size - sent)]
            await response.write(piece)
            sent += len(piece)
        await response.write(tail)
    except ConnectionError:
        pass  # the client stopped reading, as it should
    return response


def _next(faults: Faults, name: str) -> bool:
    """Consume one of the "next N requests" faults."""
    left = getattr(faults, name)
    if left > 0:
        setattr(faults, name, left - 1)
        return True
    return False


def _too_many(seconds: float, http_date: bool) -> web.Response:
    number = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
    if http_date:
        # HTTP dates have whole seconds: round the moment up so that the wait is never shorter.
        header = format_datetime(datetime.fromtimestamp(math.ceil(time.time() + seconds), UTC), usegmt=True)
    else:
        header = number
    return problem(429, f"Rate limit is exceeded. Try again in {number} seconds.", headers={"Retry-After": header})


# ---------------------------------------------------------------------------- resources


def _tenant(request: web.Request) -> Any:
    return request.app[STATE].tenant(int(request.match_info["tenant"]))


def _bool_query(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise InputError(name, f"The value '{request.query.get(name)}' is not valid.")
    return value == "true"


def _export(kind: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        include_recent = _bool_query(request, "includeRecentChanges")
        try:
            body, duplicates = export_page(
                _tenant(request), kind, request.query.get("from"), include_recent, state.faults, state.rng,
                state.clock(),
            )  # fmt: skip
        except ValueError as exc:
            raise InputError("from", str(exc)) from None
        state.stats.duplicate_rows_sent += duplicates
        if state.faults.page_latency:
            await asyncio.sleep(state.faults.page_latency)
        hostile = _tenant(request).hostile_rows[kind]
        if not hostile:
            return json_response(body)
        rows, hostile[:] = list(hostile), []
        state.stats.hostile_rows_sent += len(rows)
        return _with_raw_rows(body, rows)

    return handler


def _with_raw_rows(body: dict[str, Any], raw_rows: list[str]) -> web.Response:
    """The page with ``raw_rows`` (JSON texts, kept byte for byte) before its own rows."""
    own = [json.dumps(row, separators=(",", ":")) for row in body["data"]]
    envelope = json.dumps({**body, "data": []}, separators=(",", ":"))
    text = envelope.replace('"data":[]', '"data":[' + ",".join([*raw_rows, *own]) + "]", 1)
    return web.Response(text=text, content_type="application/json")


def _list(kind: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        body = list_page(_tenant(request), kind, request.query)
        if state.faults.page_latency:
            await asyncio.sleep(state.faults.page_latency)
        return json_response(body)

    return handler


_NOT_FOUND = {"jobs": "Job", "projects": "Project", "customers": "Customer"}


def _get(kind: str) -> Handler:
    renderers: dict[str, Callable[[Any], dict[str, Any]]] = {
        "jobs": render_job, "projects": render_project, "customers": render_customer,
    }  # fmt: skip
    render = renderers[kind]

    async def handler(request: web.Request) -> web.StreamResponse:
        record_id = int(request.match_info["id"])
        record = getattr(_tenant(request), kind).get(record_id)
        if record is None:
            return problem(404, f"{_NOT_FOUND[kind]} with ID {record_id} was not found.")
        return json_response(render(record))

    return handler
