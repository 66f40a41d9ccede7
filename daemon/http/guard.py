"""Who may call what, from where, with which content type: the rules every HTTP request passes first.

They are aiohttp middlewares of the whole application, so every endpoint (the JSON API, and any page
served beside it) inherits them. In order:

1. Host. The `Host` header must name the listen address, a loopback name (`localhost`, 127.0.0.0/8,
   `::1`), an `http.allowed_hosts` entry, or, when listening on every address, an IP literal: else 421.
   A web page can make a browser send requests to 127.0.0.1 under the page's own host name (DNS
   rebinding); an IP literal cannot be rebound.
2. Authentication, decided by the socket in use: the address bound at start, whatever a reload says
   later (a listen address changes only with a restart). On a non-loopback socket every request except
   GET /livez, /readyz and /metrics needs `Authorization: Bearer <http.token>`; on loopback, every
   request that is not a GET does whenever a token is configured. Compared in constant time, as bytes.
3. A request that can change something (any method but GET and HEAD) declares `Content-Type:
   application/json`: else 415. A page can send `text/plain`, a form or no body at all without asking;
   JSON needs a CORS preflight, which the daemon never grants. Its body must arrive within
   BODY_TIMEOUT_S: else 408 and the connection closes.

The HTML pages pass rule 1 and the body deadline, then keep rules of their own instead of 2 and 3: a
session cookie (SameSite=Strict) given for the token, a CSRF token in every form, and on a non-loopback
socket nothing shown without a session (daemon.http.pages).

Every answer then passes the redactor: a JSON body is decoded, its strings redacted and encoded again;
a text body is redacted as written.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from daemon.config.sections import HttpConfig
from daemon.logs import Redactor

OPEN_PATHS = frozenset({"/livez", "/readyz", "/metrics"})  # health checks and scrapers need no token
READ_ONLY = frozenset({"GET", "HEAD"})
BODY_TIMEOUT_S = 5.0  # 64 KiB at most: any client that means it sends that in well under a second
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _host_name(value: str) -> str | None:
    """The host part of a Host header (`name`, `name:port`, `[v6]:port`), lower case; None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or _ip(name) is None:
            return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return name or None


def host_allowed(value: str | None, listener: HttpConfig, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether a request with this Host header may be answered (rule 1 above)."""
    name = _host_name(value or "")
    if name is None or value is None:
        return False
    ip = _ip(name)
    if name == "localhost" or (ip is not None and ip.is_loopback):
        return True
    if name == listener.host.lower() or (ip is not None and listener.host in _WILDCARDS):
        return True
    return name in allowed_hosts or value.strip().lower() in allowed_hosts


def _authorized(given: str | None, token: str) -> bool:
    # Bytes, because a header may carry any byte (aiohttp keeps a non-UTF-8 one as a surrogate escape);
    # compare_digest, so that the time taken does not tell how much of the token matched.
    try:
        given_bytes = (given or "").encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given_bytes, f"Bearer {token}".encode())


def rules(listener: HttpConfig, current: Callable[[], HttpConfig],
          own_sign_in: Callable[[str], bool] = lambda _path: False) -> Middleware:
    """Rules 1 to 3; `listener` is the address bound at start, `current` the settings now in force.

    Paths for which `own_sign_in` is true (the HTML pages) pass rule 1 and the body deadline, and then
    their own rules: a session cookie (SameSite=Strict) got for the token, and a CSRF token in every form.
    """

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        http = current()
        if not host_allowed(request.headers.get("Host"), listener, http.allowed_hosts):
            return _error(421, "this Host is not served here: use the listen address or a loopback name, "
                               "or add the name to http.allowed_hosts")
        if own_sign_in(request.path):
            return await _with_body(request, handler)
        token = http.token.reveal() if http.token is not None else None
        needs_token = (request.method not in READ_ONLY and (token is not None or not listener.loopback)) or (
            not listener.loopback and request.path not in OPEN_PATHS)
        if needs_token and (token is None or not _authorized(request.headers.get("Authorization"), token)):
            return _error(401, "missing or wrong bearer token",
                          {"WWW-Authenticate": 'Bearer realm="st-intacct-sync"'})
        if request.method not in READ_ONLY and (
                request.headers.get("Content-Type") is None or request.content_type != "application/json"):
            return _error(415, "the body must be application/json (send Content-Type: application/json)")
        return await _with_body(request, handler)

    return guard


async def _with_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`handler`'s answer once the body (if the method has one) arrived within BODY_TIMEOUT_S; else 408."""
    if request.method not in READ_ONLY:
        try:
            await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
        except TimeoutError:
            response = _error(408, f"the body did not arrive within {BODY_TIMEOUT_S:g} s")
            response.force_close()
            return response
    return await handler(request)


def redacting(redactor: Redactor) -> Middleware:
    """Every answer with its configured secrets masked (the outermost middleware: errors included)."""

    @web.middleware
    async def redact(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if isinstance(response, web.Response) and redactor.secrets:
            _redact_body(response, redactor)
        return response

    return redact


def _redact_body(response: web.Response, redactor: Redactor) -> None:
    body = response.body
    if not isinstance(body, bytes | bytearray):
        return
    if not (response.content_type.startswith("text/") or response.content_type == "application/json"):
        return  # binary: nothing a configured secret could be written into as text
    charset = response.charset or "utf-8"
    try:
        text = bytes(body).decode(charset)
    except (UnicodeDecodeError, LookupError):
        return
    redacted = redactor.redact(text)
    if redacted == text:
        return
    if response.content_type == "application/json":
        # Redacting the decoded document keeps the body valid JSON whatever a secret holds.
        try:
            doc: Any = json.loads(text)
        except ValueError:
            doc = None
        else:
            response.body = json.dumps(redactor.walk(doc), ensure_ascii=False).encode(charset)
            return
    response.body = redacted.encode(charset)
