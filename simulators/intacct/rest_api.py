"""The REST API under ``/ia/api/v1``: token endpoint, projects, query, with the XML gateway's faults.

Faults meet a request in this order: rate limit (429), server error (5xx), forced token failure;
then the bearer token; the company's request slots (shared with the XML gateway unless told
otherwise); latency; the Idempotency-Key (replay, conflict, in progress); a timeout or a lost
answer (applied, then 502); finally the operation itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from aiohttp import web

from simulators.intacct.rest_records import RecordError
from simulators.intacct.rest_state import AccessToken, Replay, RestState

API_PREFIX = "/ia/api/v1"
REST_STATE: web.AppKey[RestState] = web.AppKey("intacct_rest_state", RestState)
Operation = Callable[[web.Request, RestState, Any], Awaitable[tuple[int, dict[str, Any]]]]


def json_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response as the API sends it."""
    return web.Response(text=json.dumps(body), status=status, headers=headers, content_type="application/json")


def error_object(e: RecordError) -> dict[str, Any]:
    """The ``ia::error`` object of a refusal."""
    error: dict[str, Any] = {"code": e.code, "message": e.message, "errorId": e.error_id,
                             "additionalInfo": {"messageId": "IA." + e.code.upper(), "placeholders": {},
                                                "propertySet": {}},
                             "supportId": "SIM" + hashlib.sha1(e.message.encode()).hexdigest()[:12]}
    if e.details:
        error["details"] = list(e.details)
    return error


def error_body(rest: RestState, e: RecordError, *, meta: bool = True) -> dict[str, Any]:
    """An error in the envelope the options choose (nested under ia::result, or at the top)."""
    error = error_object(e)
    body: dict[str, Any] = ({"ia::result": {"ia::error": error}} if rest.options.error_envelope == "nested"
                            else {"ia::error": error})
    if meta:
        body["ia::meta"] = {"totalCount": 1, "totalSuccess": 0, "totalError": 1}
    return body


def _throttled(rest: RestState, message: str) -> web.Response:
    wait = f"{rest.company.faults.retry_after:g}"
    headers = {"X-IA-Throttle-Limit": "100", "X-IA-Throttle-Limit-Remaining": "0"}
    if rest.options.retry_after_header in ("x-ia", "both"):
        headers["X-IA-Throttle-Limit-RetryAfter"] = wait
    if rest.options.retry_after_header in ("standard", "both"):
        headers["Retry-After"] = wait
    return json_answer(429, error_body(rest, RecordError(429, "GW-0010", message, "GW-0010")), headers)


def invalid_token(rest: RestState) -> web.Response:
    """The answer to a missing, expired or revoked token (401 GW-0040, or 400 REST-1206)."""
    if rest.options.invalid_token_answer == 400:
        return json_answer(400, {"error": {"code": "tokenInvalid", "message": "The token is not valid",
                                     "errorId": "REST-1206"}})
    return json_answer(401, {"ia::error": {"code": "GW-0040", "message": "Expired token"}})


def _gateway_fault(rest: RestState) -> web.Response | None:
    company = rest.company
    faults = company.faults
    if company.chance(faults.rate_limit_rate):
        company.stats.faults["rate_limit"] += 1
        return _throttled(rest, "API rate limit exceeded")
    if company.chance(faults.error_rate):
        status = company.rng.choice((500, 502, 503))
        company.stats.faults[f"http_{status}"] += 1
        if status == 500:
            return json_answer(500, {"ia::error": {"code": "GW-0001", "message": "Unable to process request"}})
        return web.Response(status=status, text=f"<html><body><h1>{status}</h1></body></html>",
                            content_type="text/html")
    if company.chance(faults.http_401_rate):
        company.stats.faults["http_401"] += 1
        return invalid_token(rest)
    return None


def _grant(request: web.Request, rest: RestState) -> AccessToken | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return rest.check(header.removeprefix("Bearer ").strip())


async def serve(request: web.Request, operation: Operation, *, records: int = 1) -> web.StreamResponse:
    """Run one API call through the faults, then ``operation``."""
    rest = request.app[REST_STATE]
    company = rest.company
    company.stats.requests += 1
    rest.counters["requests"] += 1
    company.enter()
    try:
        raw = await request.read()
        fault = _gateway_fault(rest)
        if fault is not None:
            return fault
        grant = _grant(request, rest)
        if grant is None:
            rest.counters["token_refusals"] += 1
            company.stats.auth_failures += 1
            return invalid_token(rest)
        entity = request.headers.get("X-IA-API-Param-Entity")
        if entity:
            rest.entities_seen.add(entity)
        if not rest.options.projects_permission:
            company.stats.auth_failures += 1
            error = RecordError(403, "GW-0042", "Forbidden: the user has no permission for projects/project",
                                "GW-0042")
            return json_answer(403, error_body(rest, error))
        limiter = company.limiter if rest.options.shared_concurrency else rest.limiter
        if not await limiter.acquire(company.faults.max_concurrent, company.faults.concurrency_wait):
            company.stats.faults["concurrency_limit"] += 1
            return _throttled(rest, "Too many concurrent requests for this company")
        try:
            return await _operate(request, rest, grant, raw, operation, records)
        finally:
            await limiter.release()
    finally:
        company.leave()


async def _operate(request: web.Request, rest: RestState, grant: AccessToken, raw: bytes, operation: Operation,
                   records: int) -> web.StreamResponse:
    company = rest.company
    faults = company.faults
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        refusal = RecordError(400, "invalidRequest", "The payload is not JSON", "REST-1064")
        return json_answer(400, error_body(rest, refusal))
    key = request.headers.get("Idempotency-Key")
    replay: Replay | None = None
    if key and request.method in ("POST", "PATCH") and rest.options.idempotency_supported:
        found = await _idempotency(rest, grant, key, raw)
        if isinstance(found, web.StreamResponse):
            return found
        replay = found
    try:
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        if faults.latency_per_function > 0:
            await asyncio.sleep(faults.latency_per_function * max(1, records))
        if company.chance(faults.timeout_rate):
            company.stats.faults["timeout"] += 1
            await asyncio.sleep(faults.hang_seconds)
            if company.rng.random() < 0.5:
                company.stats.faults["timeout_not_applied"] += 1
                if replay is not None:
                    rest.replays.pop((grant.username, key or ""), None)
                return web.Response(status=504, text="Gateway Timeout")
            company.stats.faults["timeout_applied"] += 1
        lost = company.chance(faults.lost_answer_rate)
        status, answer = await operation(request, rest, body)
        if replay is not None:
            replay.status, replay.body = status, json.dumps(answer).encode()
        if lost:
            company.stats.faults["lost_answer"] += 1
            return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                                content_type="text/html")
        headers = {"Idempotency-Key": key} if replay is not None and key else None
        return json_answer(status, answer, headers)
    finally:
        if replay is not None:
            if not replay.status:  # cancelled or failed before an answer: nothing to replay
                rest.replays.pop((grant.username, key or ""), None)
            replay.done.set()


async def _idempotency(rest: RestState, grant: AccessToken, key: str, raw: bytes) -> Replay | web.StreamResponse:
    """A new Replay to fill in, or the response a known key gets."""
    o = rest.options
    if len(key) > 256:
        return json_answer(400, error_body(rest, RecordError(400, "invalidRequest", "Idempotency-Key is too long",
                                                       "REST-1064")))
    now = time.time()
    body_hash = hashlib.sha256(raw).hexdigest()
    slot = (grant.username, key)
    known = rest.replays.get(slot)
    if known is not None and now > known.created + o.idempotency_retention_s:
        known = None
    if known is None:
        rest.replays[slot] = Replay(body_hash, now)
        return rest.replays[slot]
    if known.body_hash != body_hash:
        return _conflict(rest, "The Idempotency-Key was already used with a different request body")
    if not known.done.is_set():
        if o.concurrent_replay == "conflict":
            return _conflict(rest, "A request with this Idempotency-Key is in progress")
        if o.concurrent_replay == "rate_limit":
            return _throttled(rest, "A request with this Idempotency-Key is in progress")
        await known.done.wait()
        if not known.status:
            rest.replays[slot] = Replay(body_hash, now)
            return rest.replays[slot]
    if now > known.created + o.idempotency_cache_s:
        if o.replay_after_cache == "conflict":
            return _conflict(rest, "The Idempotency-Key was used within the last 60 days")
        rest.replays[slot] = Replay(body_hash, now)
        return rest.replays[slot]
    rest.counters["replays_answered"] += 1
    headers = {"Idempotency-Key": key, "x-ia-idempotency-cached-date": formatdate(known.created, usegmt=True)}
    return web.Response(body=known.body, status=known.status, headers=headers, content_type="application/json")


def _conflict(rest: RestState, message: str) -> web.Response:
    rest.counters["idempotency_conflicts"] += 1
    return json_answer(409, error_body(rest, RecordError(409, "idempotencyConflict", message, "REST-1409")))
