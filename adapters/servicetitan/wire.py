"""Reading ServiceTitan answers: JSON bodies, envelope fields, rows and RFC 7807 problems."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from adapters.errors import AdapterError, ConnectionFailure, NotFoundError, PermanentError, TransientError
from adapters.servicetitan.limits import parse_retry_after, retry_after_from_title
from adapters.servicetitan.models import INT64_MAX, HugeNumber, RejectedRow
from adapters.transport import is_redirect, redirect_host

__all__ = [
    "body_field",
    "decode_json",
    "error_for_status",
    "outcome_for_status",
    "parse_rows",
    "problem_text",
    "problem_title",
    "rejected_row",
]

log = logging.getLogger("adapters.servicetitan")

T = TypeVar("T")


def outcome_for_status(status: int) -> str:
    """The observer outcome of one HTTP answer: its error class before any retry."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status == 404:
        return "not_found"
    if status in (401, 403):
        return "connection_error"
    if status >= 500 or status == 408:
        return "transient_error"
    return "permanent_error"


_MAX_DIGITS = len(str(INT64_MAX))


def _parse_int(literal: str) -> int | HugeNumber:
    # Python refuses to convert integers of more than 4,300 digits (and is slow well below): one such
    # number would make the whole page "not JSON", for ever. It stays text and its row is rejected.
    if len(literal.lstrip("-")) > _MAX_DIGITS:
        return HugeNumber(literal)
    return int(literal)


def error_for_status(
    status: int, headers: Mapping[str, str], body: bytes, what: str, tenant_id: int, retry_after_max: float
) -> AdapterError:
    """The error class of a non-2xx API answer (a 401 here is one that a fresh token did not cure)."""
    if is_redirect(status):
        # Following it would send the token and the app key to whatever host it names.
        return ConnectionFailure(
            f"ServiceTitan answered {what} with HTTP {status}, a redirect to {redirect_host(headers)};"
            " redirects are not followed: check servicetitan.api_base_url",
            status=status,
        )
    if status == 401:
        return ConnectionFailure(
            f"ServiceTitan refused a freshly renewed access token ({what}: HTTP 401{problem_text(body)});"
            " check the app key",
            status=401,
        )
    if status == 403:
        return ConnectionFailure(
            f"ServiceTitan denied access ({what}: HTTP 403{problem_text(body)}); is the app "
            f"connected to tenant {tenant_id} with the read scopes?",
            status=403,
        )
    if status == 404:
        return NotFoundError(f"ServiceTitan has no such record ({what}: HTTP 404{problem_text(body)})", status=404)
    if status == 429:
        after = parse_retry_after(headers.get("Retry-After"), maximum=retry_after_max)
        if after is None:
            after = retry_after_from_title(problem_title(body), maximum=retry_after_max)
        return TransientError(f"ServiceTitan rate limit ({what}: HTTP 429)", retry_after=after, status=429)
    if status >= 500 or status == 408:
        return TransientError(f"ServiceTitan failed ({what}: HTTP {status}{problem_text(body)})", status=status)
    return PermanentError(
        f"ServiceTitan refused the request ({what}: HTTP {status}{problem_text(body)})", status=status
    )


def decode_json(body: bytes, what: str) -> Any:
    """A success body as JSON (TransientError when it is not JSON); huge integers become HugeNumber."""
    try:
        return json.loads(body, parse_int=_parse_int)
    except ValueError:
        # A cut or non-JSON success body is what a proxy or a dropped connection leaves: retry it.
        raise TransientError(f"ServiceTitan answered {what} with a body that is not JSON") from None


def body_field(body: Any, name: str, kind: type[T], where: str) -> T:
    """A required envelope field of the given type (PermanentError when absent or mistyped)."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind):
        raise PermanentError(f"ServiceTitan's {where} answer has no valid '{name}'")
    return value


def rejected_row(feed: str, raw: Any, reason: str) -> RejectedRow:
    """A RejectedRow for ``raw``, its id shown as text when it has one."""
    ident = raw.get("id") if isinstance(raw, dict) else None
    shown = None if ident is None or isinstance(ident, dict | list) else str(ident)
    if shown is not None and len(shown) > 40:
        shown = shown[:40] + "…"
    return RejectedRow(feed=feed, id=shown, reason=reason[:300])


def parse_rows(
    data: list[Any], parse: Callable[[Mapping[str, Any]], T], feed: str
) -> tuple[list[T], tuple[RejectedRow, ...]]:
    """Parse each row; the rows that cannot be taken in come back apart, each with its reason."""
    rows: list[T] = []
    rejected: list[RejectedRow] = []
    for raw in data:
        try:
            rows.append(parse(raw))
        except PermanentError as exc:
            # One malformed row must not stall a whole feed: the caller logs, counts and lists it.
            rejected.append(rejected_row(feed, raw, exc.message))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # Whatever a parser did not foresee is still about this row only.
            rejected.append(rejected_row(feed, raw, f"{type(exc).__name__}: {str(exc)[:200]}"))
    return rows, tuple(rejected)


def _problem(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def problem_title(body: bytes) -> str | None:
    """The ``title`` of an RFC 7807 body, if any."""
    title = _problem(body).get("title")
    return title if isinstance(title, str) else None


def problem_text(body: bytes) -> str:
    """``: <title> [field: message; ...]`` from an RFC 7807 body, cut to a sane length."""
    doc = _problem(body)
    parts: list[str] = []
    title = doc.get("title")
    if isinstance(title, str) and title:
        parts.append(title)
    errors = doc.get("errors")
    if isinstance(errors, dict):
        for key, messages in errors.items():
            texts = messages if isinstance(messages, list) else [messages]
            parts.append(f"{key}: " + " ".join(str(t) for t in texts))
    text = "; ".join(parts)
    return f": {text[:500]}" if text else ""
