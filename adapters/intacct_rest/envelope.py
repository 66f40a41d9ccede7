"""Reading the REST API's answers: the three error envelopes, and what each failure means for us.

Errors come nested under ``ia::result`` (Sage's schema), at the top level as ``ia::error`` (Sage's
error guide), or as a bare ``error`` object (token problems). Whatever the shape, a failure is
reduced to an ``ErrorDetail`` (errorno = errorId or code, description = message, description2 =
the details' messages) so that records store it exactly as they store XML errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from adapters.intacct.models import ErrorDetail, Outcome
from adapters.transport import parse_retry_after

# Statuses and texts that mean "this access token is no longer good": mint a new one, resend once.
_INVALID_TOKEN_IDS = frozenset({"REST-1206", "REST-2102", "GW-0031", "GW-0040", "GW-0034"})
_INVALID_TOKEN_TEXTS = ("token is not valid", "invalid token", "expired token", "tokeninvalid")
# Gateway codes of credentials that will not work until someone fixes them (client app, tenant, user).
CREDENTIAL_IDS = frozenset(
    {"GW-0011", "GW-0012", "GW-0032", "GW-0033", "GW-0035", "GW-0036", "GW-0037", "GW-0038", "GW-0039", "GW-0042"}
)
_DUPLICATE_TEXTS = ("already exists", "another record with the value")
# Rate-limit headers, most specific first (Sage's X-IA-* family, then the standard one).
RETRY_AFTER_HEADERS = (
    "X-IA-Throttle-Limit-RetryAfter",
    "X-IA-TENANT-Throttle-Limit-Retry-After",
    "X-IA-Hour-Rate-Limit-Retry-After",
    "Retry-After",
)


@dataclass(frozen=True)
class RestError:
    """One failure as the API described it."""

    code: str = ""
    error_id: str = ""
    message: str = ""
    details: tuple[str, ...] = ()
    correction: str = ""

    def detail(self) -> ErrorDetail:
        """As the XML adapter's error detail, for a record's last_error."""
        return ErrorDetail(
            errorno=self.error_id or self.code,
            description=self.message,
            description2="; ".join(self.details),
            correction=self.correction,
        )

    def text(self) -> str:
        """Every part, for matching and for messages."""
        return " ".join(p for p in (self.code, self.error_id, self.message, *self.details, self.correction) if p)


class ErrorFields(TypedDict, total=False):
    errorno: str | None
    description: str | None
    description2: str | None
    correction: str | None


def error_fields(error: RestError | None) -> ErrorFields:
    """The error as keyword arguments of the adapter error classes."""
    if error is None:
        return {}
    d = error.detail()
    return {"errorno": d.errorno, "description": d.description, "description2": d.description2,
            "correction": d.correction}


def load(raw: bytes) -> Any:
    """The JSON body, or None if it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def error_of(body: Any) -> RestError | None:
    """The error in any of the three envelopes, if there is one."""
    if not isinstance(body, Mapping):
        return None
    found: Any = body.get("ia::error")
    result = body.get("ia::result")
    if found is None and isinstance(result, Mapping):
        found = result.get("ia::error")
    if found is None:
        found = body.get("error")
    if isinstance(found, str):  # OAuth-style token endpoint answer: {"error": "invalid_client", ...}
        return RestError(code=found, message=str(body.get("error_description") or ""))
    if not isinstance(found, Mapping):
        return None
    details = found.get("details")
    items = details if isinstance(details, list) else [details] if isinstance(details, Mapping) else []
    texts = tuple(str(d.get("message")) for d in items if isinstance(d, Mapping) and d.get("message"))
    ids = tuple(str(d.get("errorId")) for d in items if isinstance(d, Mapping) and d.get("errorId"))
    correction = next((str(d["correction"]) for d in items if isinstance(d, Mapping) and d.get("correction")), "")
    message = str(found.get("message") or "")
    return RestError(
        code=str(found.get("code") or ""),
        error_id=str(found.get("errorId") or ""),
        message=message,
        details=texts + tuple(i for i in ids if i not in message),
        correction=correction,
    )


def is_invalid_token(status: int, error: RestError | None) -> bool:
    """Whether the answer says the access token is bad (401, or 400 with a token error)."""
    if status == 401:
        return True
    if status != 400 or error is None:
        return False
    text = error.text().lower()
    return error.error_id in _INVALID_TOKEN_IDS or any(t in text for t in _INVALID_TOKEN_TEXTS)


def is_idempotency_conflict(status: int, error: RestError | None) -> bool:
    """A 409 about the Idempotency-Key (reused with another body), not about the record."""
    return status == 409 and error is not None and "idempoten" in error.text().lower()


def is_duplicate(status: int, error: RestError | None) -> bool:
    """A create refused because the PROJECTID exists: 409 (not a key conflict) or the duplicate text."""
    if is_idempotency_conflict(status, error):
        return False
    if status == 409:
        return True
    return error is not None and 400 <= status < 500 and any(t in error.text().lower() for t in _DUPLICATE_TEXTS)


def record_outcome(status: int, error: RestError | None, op: str) -> Outcome:
    """What a per-record status means for the record a create or update carried."""
    if 200 <= status < 300 and error is None:
        return Outcome.SUCCESS
    if op == "create" and is_duplicate(status, error):
        return Outcome.ALREADY_EXISTS
    if op == "update" and (status == 404 or (error is not None and error.code == "notFound")):
        return Outcome.NOT_EXISTING
    if status in (408, 429) or status >= 500 or is_idempotency_conflict(status, error):
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


def retry_after(headers: Mapping[str, str], maximum: float = math.inf) -> float | None:
    """Seconds to wait from the first usable rate header, clamped to [0, maximum] (None: none usable)."""
    for name in RETRY_AFTER_HEADERS:
        seconds = parse_retry_after(headers.get(name), maximum=maximum)
        if seconds is not None:
            return seconds
    return None
