"""Reading ServiceTitan answers: JSON bodies, envelope fields, rows and RFC 7807 problems."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from adapters.errors import PermanentError, TransientError

__all__ = ["body_field", "decode_json", "outcome_for_status", "parse_rows", "problem_text", "problem_title"]

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


def decode_json(body: bytes, what: str) -> Any:
    """A success body as JSON (TransientError when it is not JSON)."""
    try:
        return json.loads(body)
    except ValueError:
        # A cut or non-JSON success body is what a proxy or a dropped connection leaves: retry it.
        raise TransientError(f"ServiceTitan answered {what} with a body that is not JSON") from None


def body_field(body: Any, name: str, kind: type[T], where: str) -> T:
    """A required envelope field of the given type (PermanentError when absent or mistyped)."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind):
        raise PermanentError(f"ServiceTitan's {where} answer has no valid '{name}'")
    return value


def parse_rows(data: list[Any], parse: Callable[[Mapping[str, Any]], T]) -> tuple[list[T], tuple[PermanentError, ...]]:
    """Parse each row; rows that cannot be parsed are logged and returned apart."""
    rows: list[T] = []
    refused: list[PermanentError] = []
    for raw in data:
        try:
            rows.append(parse(raw))
        except PermanentError as exc:
            # One malformed row must not stall a whole feed; the caller sees it in `refused`.
            log.warning("servicetitan_row_refused: %s", exc.message)
            refused.append(exc)
    return rows, tuple(refused)


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
