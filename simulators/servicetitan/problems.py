"""RFC 7807 error answers in ServiceTitan's ``ApiErrorResponse`` shape, and JSON helpers."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import web

_TYPES = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    401: "https://tools.ietf.org/html/rfc7235#section-3.1",
    403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
}


def trace_id() -> str:
    """A W3C-style trace id, as ASP.NET puts in its problem answers."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


def problem(
    status: int,
    title: str,
    *,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An ``application/problem+json`` answer: ``{type, title, status, traceId, errors, data}``."""
    body = {
        "type": _TYPES.get(status, "https://tools.ietf.org/html/rfc7231#section-6.6.1"),
        "title": title,
        "status": status,
        "traceId": trace_id(),
        "errors": dict(errors or {}),
        "data": {},
    }
    return web.Response(text=json.dumps(body), status=status, content_type="application/problem+json", headers=headers)


def json_response(doc: Any, status: int = 200) -> web.Response:
    """A compact JSON answer (large pages serialise faster without indentation)."""
    return web.Response(text=json.dumps(doc, separators=(",", ":")), status=status, content_type="application/json")
