"""``POST /ia/xml/xmlgw.phtml``: the gateway, with its faults, in the order Intacct meets them.

1. gateway faults that answer before anything is read: HTTP 401, 429 (GW-0010), 5xx;
2. the envelope (XL03000003 when it cannot be parsed) and the sender credentials (control level);
3. the company's concurrency slot: a request beyond ``max_concurrent`` waits ``concurrency_wait``
   seconds, then fails with "too many operations" (control level, or per function);
4. latency, then authentication (login or session, operation level);
5. the functions, each on its own; a timeout hangs and then applies or not at random; a lost
   answer applies and then answers 502; a cut-off answer applies and then sends half a document
   with HTTP 200; an oversized answer applies and then sends ``oversize_bytes`` of it.

Before 1., what stands in front of the real gateway: a redirect, or a 200 HTML maintenance page.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from simulators.intacct import xmlio
from simulators.intacct.functions import Context, run
from simulators.intacct.projects import SimError
from simulators.intacct.state import SimState, format_timestamp
from simulators.intacct.xmlio import AuthInfo, Request, Result

GATEWAY_PATH = "/ia/xml/xmlgw.phtml"
STATE: web.AppKey[SimState] = web.AppKey("intacct_sim_state", SimState)

TOO_MANY_OPERATIONS = SimError(
    # The number in the text is what Intacct prints; its errorno is not documented, so we use it.
    "200024",
    description2="There are too many operations running for this company (200024).",
    correction="Wait for the running operations to finish, then resend the request.",
)
BAD_SENDER = SimError("XL03000006", description2="Incorrect Intacct XML Partner ID or password.")
BAD_LOGIN = SimError("XL03000006", description2="Sign-in information is incorrect")
INVALID_SESSION = SimError("XL03000006", description2="Invalid session")
# The other words a dead session comes with (see the session_death fault).
SESSION_DEATH_ERRORS = {
    "invalid_session": (INVALID_SESSION, False),
    "sign_in_incorrect": (BAD_LOGIN, True),  # the user's ids filled in, as for a wrong password
    "empty_userid": (SimError("XL03000006"), False),  # no words at all, empty userid and companyid
}
MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>Sage Intacct - Scheduled Maintenance</title></head><body>"
    "<h1>We'll be back soon</h1><p>Sage Intacct is undergoing scheduled maintenance.</p></body></html>"
)


def _xml(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="text/xml", charset="utf-8")


def _endpoint(request: web.Request, state: SimState) -> str:
    return state.session_endpoint or f"{request.scheme}://{request.host}{GATEWAY_PATH}"


async def handle(request: web.Request) -> web.StreamResponse:
    """Serve one gateway request."""
    state = request.app[STATE]
    state.stats.requests += 1
    state.enter()
    try:
        return await _serve(request, state)
    finally:
        state.leave()


def _http_401() -> web.Response:
    body = xmlio.gateway_failure("XMLGW_JPP0002", "Sign-in information is incorrect. Please check your request.")
    return _xml(body, status=401)


def _gateway_fault(state: SimState) -> web.Response | None:
    faults = state.faults
    if state.chance(faults.redirect_rate):
        state.stats.faults["redirect"] += 1
        return web.Response(status=307, headers={"Location": faults.redirect_location})
    if state.chance(faults.html_200_rate):
        state.stats.faults["html_200"] += 1
        return web.Response(status=200, text=MAINTENANCE_PAGE, content_type="text/html")
    if state.chance(faults.http_401_rate):
        state.stats.faults["http_401"] += 1
        return _http_401()
    if state.chance(faults.rate_limit_rate):
        state.stats.faults["rate_limit"] += 1
        body = xmlio.gateway_failure("GW-0010", "Your API client has hit its assigned rate limit. Slow down and retry.")
        return _xml(body, status=429, headers={"Retry-After": f"{faults.retry_after:g}"})
    if state.chance(faults.error_rate):
        status = state.rng.choice((500, 502, 503))
        state.stats.faults[f"http_{status}"] += 1
        return web.Response(
            status=status, text=f"<html><body><h1>{status}</h1></body></html>", content_type="text/html"
        )
    return None


async def _serve(request: web.Request, state: SimState) -> web.StreamResponse:
    body = await request.read()
    fault = _gateway_fault(state)
    if fault is not None:
        return fault
    try:
        parsed = xmlio.parse_request(body)
    except xmlio.SchemaError as exc:
        state.stats.control_failures += 1
        error = SimError("XL03000003", description2=f"XML Parse schema error: {exc}")
        return _xml(xmlio.control_failure(None, [error]))
    if not state.credentials.sender_ok(parsed.sender_id, parsed.sender_password):
        state.stats.control_failures += 1
        state.stats.auth_failures += 1
        return _xml(xmlio.control_failure(parsed, [BAD_SENDER]))
    faults = state.faults
    got_slot = await state.limiter.acquire(faults.max_concurrent, faults.concurrency_wait)
    if not got_slot:
        state.stats.faults["concurrency_limit"] += 1
        if state.faults.concurrency_error_level == "control":
            state.stats.control_failures += 1
            return _xml(xmlio.control_failure(parsed, [TOO_MANY_OPERATIONS]))
    try:
        return await _operate(request, state, parsed, got_slot)
    finally:
        if got_slot:
            await state.limiter.release()


def _dead_session(state: SimState, parsed: Request) -> web.Response:
    state.stats.auth_failures += 1
    wording = state.faults.session_death
    if wording == "http_401":
        return _http_401()
    error, with_ids = SESSION_DEATH_ERRORS[wording]
    login = parsed.login
    userid = login.userid if login and with_ids else ("user" if with_ids else "")
    companyid = login.companyid if login and with_ids else ("company" if with_ids else "")
    return _xml(xmlio.auth_failure(parsed, [error], userid, companyid))


def _authenticate(state: SimState, parsed: Request) -> AuthInfo | web.Response:
    if parsed.login is None:
        session = state.use_session(parsed.session_id or "")
        if session is None:
            return _dead_session(state, parsed)
        return AuthInfo(
            session.userid,
            session.companyid,
            session.locationid,
            format_timestamp(session.created),
            state.session_timeout(session) if state.faults.announce_session_timeout else None,
        )
    login = parsed.login
    if not state.credentials.user_ok(login.companyid, login.userid, login.password):
        state.stats.auth_failures += 1
        return _xml(xmlio.auth_failure(parsed, [BAD_LOGIN], login.userid, login.companyid))
    # Login auth announces no sliding timeout unless a session is opened (getAPISession).
    return AuthInfo(login.userid, login.companyid, login.locationid, format_timestamp(time.time()), None)


async def _operate(request: web.Request, state: SimState, parsed: Request, got_slot: bool) -> web.StreamResponse:
    faults = state.faults
    if faults.latency > 0:
        await asyncio.sleep(faults.latency)
    auth = _authenticate(state, parsed)
    if isinstance(auth, web.Response):
        return auth
    if not got_slot:  # function-level "too many operations": every function fails, none ran
        results = [Result("failure", call.name, call.controlid, errors=[TOO_MANY_OPERATIONS]) for call in parsed.calls]
        return _xml(xmlio.response(parsed, auth, results))
    if faults.latency_per_function > 0 and parsed.calls:
        await asyncio.sleep(faults.latency_per_function * len(parsed.calls))
    context = Context(state, parsed, auth, _endpoint(request, state))
    if state.chance(faults.timeout_rate):
        state.stats.faults["timeout"] += 1
        # The client gives up while the company keeps working; whether it finishes is a coin toss.
        await asyncio.sleep(faults.hang_seconds)
        if state.rng.random() < 0.5:
            state.stats.faults["timeout_not_applied"] += 1
            return web.Response(status=504, text="Gateway Timeout")
        state.stats.faults["timeout_applied"] += 1
        return _xml(xmlio.response(parsed, auth, run(context)))
    if state.chance(faults.lost_answer_rate):
        state.stats.faults["lost_answer"] += 1
        run(context)
        return web.Response(
            status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"
        )
    if state.chance(faults.cut_off_rate):
        state.stats.faults["cut_off"] += 1
        body = xmlio.response(parsed, auth, run(context))
        return _xml(body[: len(body) // 2])
    if state.chance(faults.oversize_rate):
        state.stats.faults["oversize"] += 1
        return await _oversized(request, xmlio.response(parsed, auth, run(context)), faults.oversize_bytes)
    return _xml(xmlio.response(parsed, auth, run(context)))


async def _oversized(request: web.Request, body: bytes, size: int) -> web.StreamResponse:
    """The answer padded to ``size`` bytes, streamed without a length (memory stays flat here too)."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/xml; charset=utf-8"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b" " * (1024 * 1024)
    sent = 0
    try:
        await response.write(body.replace(b"</response>", b""))
        sent = len(body)
        while sent < size:
            piece = chunk[: min(len(chunk), size - sent)]
            await response.write(piece)
            sent += len(piece)
        await response.write(b"</response>")
    except (ConnectionResetError, ConnectionError):
        pass  # the client stopped reading, as it should
    return response
