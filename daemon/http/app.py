"""The operators' HTTP endpoints (the README's "HTTP endpoints"): a plain aiohttp application run inside the daemon."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from daemon import logs
from daemon.http import guard
from daemon.http.pages import install as install_pages
from daemon.http.pages import is_page
from daemon.http.services import Services
from daemon.http.status import metrics_text, status_document
from daemon.store import Record, RecordKey, Store
from daemon.sync import Verdict
from statemachine import STORED_STATES

log = logs.get("st_intacct_sync.http")
MAX_ENSURE_IDS = 200
MAX_TIMEOUT_S = 300.0
# Ids are PostgreSQL bigints: a larger one is bad input (400), not a database error (500).
MAX_ID = 2**63 - 1
# POST /v1/ensure: 200 when synced; 409 when retrying will not help; 503 when it may (Retry later).
ENSURE_STATUS = {Verdict.SYNCED: 200, Verdict.NOT_FOUND: 404, Verdict.REFUSED: 409, Verdict.ABSENT: 409,
                 Verdict.DISABLED: 409, Verdict.UNAVAILABLE: 503}


SERVICES: web.AppKey[Services] = web.AppKey("services")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False, default=str))


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    """Every error answer is JSON; an unexpected exception is logged and answered 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except Exception:
        log.exception("http_handler_failed", path=request.path, method=request.method)
        return _error(500, "internal error (see the daemon's log)")


async def livez(_request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    reasons = []
    if not await services.database.check(services.store.pool):
        db_error = services.database.last_error
        reasons.append(f"database does not answer: {db_error.text() if db_error else None}")
    if services.intacct_monitor.state == "error":
        error = services.intacct_monitor.last_error
        reasons.append(f"Intacct connection in error: {(error.text() if error else None) or 'unknown error'}")
    if reasons:
        return _json({"status": "not-ready", "reasons": reasons}, 503)
    return _json({"status": "ready"})


async def status(request: web.Request) -> web.Response:
    return _json(await status_document(request.app[SERVICES]))


async def metrics(request: web.Request) -> web.Response:
    body, content_type = await metrics_text(request.app[SERVICES], request.headers.get("Accept"))
    # prometheus_client's own encoder chose the format; its content type carries the version.
    return web.Response(body=body, headers={"Content-Type": content_type, "X-Content-Type-Options": "nosniff"})


def _cursor_out(updated_at: datetime, kind: str, st_id: int) -> str:
    raw = json.dumps([updated_at.isoformat(), kind, st_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_in(text: str) -> tuple[datetime, str, int]:
    try:
        padded = text + "=" * (-len(text) % 4)
        at, kind, st_id = json.loads(base64.urlsafe_b64decode(padded))
        if not (isinstance(at, str) and kind in ("job", "project") and _is_id(st_id)):
            raise ValueError("not a cursor")
        return datetime.fromisoformat(at), kind, st_id
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise web.HTTPBadRequest(reason="after: not a cursor this endpoint returned") from None


def _is_id(value: object) -> bool:
    """A ServiceTitan id as the store keeps it: a positive integer that fits a bigint."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def _kind(value: str) -> str:
    if value not in ("job", "project"):
        raise web.HTTPBadRequest(reason="kind must be job or project")
    return value


def _st_id(value: str) -> int:
    try:
        st_id = int(value)
    except ValueError:
        raise web.HTTPBadRequest(reason="id must be an integer") from None
    if not _is_id(st_id):
        raise web.HTTPBadRequest(reason=f"id must be between 1 and {MAX_ID}")
    return st_id


async def list_records(request: web.Request) -> web.Response:
    q = request.query
    state = q.get("state") or None
    if state is not None and state not in STORED_STATES:
        raise web.HTTPBadRequest(reason=f"unknown state {state!r}")
    kind = _kind(q["kind"]) if q.get("kind") else None
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        raise web.HTTPBadRequest(reason="limit must be an integer") from None
    if not 1 <= limit <= 1000:
        raise web.HTTPBadRequest(reason="limit must be between 1 and 1000")
    after = _cursor_in(q["after"]) if q.get("after") else None
    records = await request.app[SERVICES].store.list_records(state=state, kind=kind, limit=limit, after=after)
    next_cursor = None
    if len(records) == limit:
        last = records[-1]
        next_cursor = _cursor_out(last.updated_at, last.kind, last.st_id)
    return _json({"records": [r.public() for r in records], "next": next_cursor})


async def _tracked(request: web.Request) -> tuple[Store, Record]:
    """The record named by the path's {kind}/{id}, or 404."""
    key = RecordKey(_kind(request.match_info["kind"]), _st_id(request.match_info["id"]))
    store = request.app[SERVICES].store
    record = await store.get(key)
    if record is None:
        raise web.HTTPNotFound(reason=f"{key} is not tracked")
    return store, record


async def get_record(request: web.Request) -> web.Response:
    store, record = await _tracked(request)
    key = record.key
    body = record.public()
    body["history"] = [h.public() for h in await store.history(key)]
    return _json(body)


async def retry_record(request: web.Request) -> web.Response:
    store, record = await _tracked(request)
    key = record.key
    if not await store.retry_failed([key], priority=5, reason="operator retry (HTTP)"):
        return _error(409, f"{key} is {record.state.value}, not failed")
    updated = await store.get(key)
    return _json(updated.public() if updated else {})


def _ids(body: dict[str, Any], name: str) -> list[int]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(_is_id(i) for i in value):
        raise web.HTTPBadRequest(reason=f"{name} must be a list of ServiceTitan ids (integers from 1 to {MAX_ID})")
    return value


async def ensure(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise web.HTTPBadRequest(reason="the body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    unknown = set(body) - {"jobs", "projects", "timeout_s"}
    if unknown:
        raise web.HTTPBadRequest(reason=f"unknown fields: {', '.join(sorted(unknown))}")
    keys = [RecordKey("job", i) for i in _ids(body, "jobs")] + [RecordKey("project", i)
                                                                 for i in _ids(body, "projects")]
    if not keys:
        raise web.HTTPBadRequest(reason="give at least one id in jobs or projects")
    if len(keys) > MAX_ENSURE_IDS:
        raise web.HTTPBadRequest(reason=f"at most {MAX_ENSURE_IDS} ids per request")
    timeout = body.get("timeout_s", 30)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= MAX_TIMEOUT_S:
        raise web.HTTPBadRequest(reason=f"timeout_s must be a number of seconds in (0, {MAX_TIMEOUT_S:.0f}]")
    services = request.app[SERVICES]
    with services.metrics.ensure_seconds.time():
        outcome = await services.gate.ensure(keys, float(timeout))
    return _json(outcome.public(), ENSURE_STATUS[outcome.verdict])


async def start_reconcile(request: web.Request) -> web.Response:
    reconciler = request.app[SERVICES].reconciler
    if reconciler is None:
        return _error(503, "reconciliation is not available in this process")
    run_id = await reconciler.start_run("http")
    return _json({"id": run_id, "status": "started"}, 202)


async def latest_reconcile(request: web.Request) -> web.Response:
    reconciler = request.app[SERVICES].reconciler
    latest = await reconciler.latest() if reconciler else None
    if latest is None:
        raise web.HTTPNotFound(reason="no reconciliation has finished yet")
    return _json(latest)


def create_app(services: Services) -> web.Application:
    """The application; the supervisor serves it through daemon.http.server."""
    app = web.Application(middlewares=[guard.redacting(services.redactor), errors_as_json,
                                       guard.rules(services.listener, lambda: services.config().http, is_page)],
                          client_max_size=64 * 1024)
    app[SERVICES] = services
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/records", list_records)
    app.router.add_get("/v1/records/{kind}/{id}", get_record)
    app.router.add_post("/v1/records/{kind}/{id}/retry", retry_record)
    app.router.add_post("/v1/ensure", ensure)
    app.router.add_post("/v1/reconcile", start_reconcile)
    app.router.add_get("/v1/reconcile/latest", latest_reconcile)
    install_pages(app, services)
    return app
