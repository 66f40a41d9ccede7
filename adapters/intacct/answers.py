"""From one HTTP answer of the gateway to a parsed response or the error class it means (pure).

The table it implements: a redirect, a refused sender or a refused login is a connection error; a
rate or concurrency limit, an Intacct hiccup or a 5xx is transient; a 200 that is not a complete
``<response>`` is transient with an unknown outcome; under session authentication any refusal of the
session (whatever its words, or HTTP 401) means "log in again and resend", because no function ran;
only Intacct's own ``XL03000003`` in a parsed control block is a permanent refusal of the request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TypedDict

from adapters.errors import AdapterError, ConnectionFailure, PermanentError, TransientError
from adapters.intacct.models import ErrorDetail, Function, FunctionResult, Outcome, function_name
from adapters.intacct.xml import XML_PARSE_ERRORNO, ParsedResponse, classify_result, is_transient, parse_response
from adapters.transport import is_redirect, parse_retry_after, redirect_host

__all__ = ["SessionDead", "error_fields", "match_results", "raise_for_result", "read_answer", "summary"]

# The gateway's own word for "these credentials or this session are not accepted".
GATEWAY_AUTH_ERRORNO = "XMLGW_JPP0002"


class SessionDead(Exception):
    """The gateway refused the session: no function ran, so a fresh session and one resend are safe."""


class _ErrorFields(TypedDict, total=False):
    errorno: str | None
    description: str | None
    description2: str | None
    correction: str | None


def error_fields(errors: Sequence[ErrorDetail]) -> _ErrorFields:
    """The first error with text, as keyword arguments of the adapter error classes."""
    first = next((e for e in errors if e.text()), None)
    if first is None:
        return {}
    return {
        "errorno": first.errorno,
        "description": first.description,
        "description2": first.description2,
        "correction": first.correction,
    }


def summary(errors: Sequence[ErrorDetail]) -> str:
    """The errors' texts on one line, cut to a sane length."""
    return "; ".join(e.text() for e in errors if e.text())[:500] or "no error text"


def _has_errorno(errors: Sequence[ErrorDetail], errorno: str) -> bool:
    return any(e.errorno.strip().upper() == errorno for e in errors)


def read_answer(
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    session_auth: bool,
    retry_after_max: float = math.inf,
) -> ParsedResponse:
    """The parsed response of a usable answer; otherwise raises its class (or SessionDead)."""
    retry_after = parse_retry_after(headers.get("Retry-After"), maximum=retry_after_max)
    if status != 200:
        _raise_for_http_status(status, raw, headers, retry_after, session_auth=session_auth)
    parsed = parse_response(raw)
    _raise_for_control(parsed, retry_after, session_auth=session_auth)
    _raise_for_authentication(parsed, session_auth=session_auth)
    return parsed


def _body_errors(raw: bytes) -> tuple[ErrorDetail, ...]:
    """The errors of a non-200 XML body, if it is one; anything else gives none."""
    try:
        parsed = parse_response(raw)
    except AdapterError:
        return ()
    return parsed.control_errors or parsed.auth_errors


def _raise_for_http_status(
    status: int, raw: bytes, headers: Mapping[str, str], retry_after: float | None, *, session_auth: bool
) -> None:
    if is_redirect(status):
        # Following it would re-post the sender password (or the session) to whatever it names.
        raise ConnectionFailure(
            f"Intacct answered HTTP {status}, a redirect to {redirect_host(headers)}; redirects are not followed:"
            " check intacct.endpoint_url",
            status=status,
        )
    errors = _body_errors(raw)
    fields = error_fields(errors)
    detail = f" ({summary(errors)})" if errors else ""
    if status == 429 or is_transient(errors):
        raise TransientError(
            f"Intacct rate limit: HTTP {status}{detail}",
            outcome_unknown=False,
            retry_after=retry_after,
            status=status,
            **fields,
        )
    if status >= 500 or status == 408:
        # The gateway may have applied the request before failing (524: the CDN gave up waiting).
        raise TransientError(f"Intacct answered HTTP {status}{detail}", outcome_unknown=True, status=status, **fields)
    if status == 413:
        raise PermanentError(f"Intacct refused the request size: HTTP {status}{detail}", status=status, **fields)
    if status == 401 and session_auth:
        raise SessionDead()
    # 401 XMLGW_JPP0002 at login, 400 GW-0011, 403 or 404: credentials or endpoint are wrong.
    raise ConnectionFailure(f"Intacct refused the request: HTTP {status}{detail}", status=status, **fields)


def _raise_for_control(parsed: ParsedResponse, retry_after: float | None, *, session_auth: bool) -> None:
    if parsed.control_status == "success":
        return
    errors = parsed.control_errors
    message = f"Intacct control failure: {summary(errors)}"
    if _has_errorno(errors, XML_PARSE_ERRORNO):
        raise PermanentError(message, **error_fields(errors))
    if is_transient(errors):
        raise TransientError(message, outcome_unknown=False, retry_after=retry_after, **error_fields(errors))
    if session_auth and _has_errorno(errors, GATEWAY_AUTH_ERRORNO):
        raise SessionDead()
    # XL03000006 (sender id/password), PL04000055 (company expired) and the like: nothing ran.
    raise ConnectionFailure(message, **error_fields(errors))


def _raise_for_authentication(parsed: ParsedResponse, *, session_auth: bool) -> None:
    if parsed.auth_status in (None, "success"):
        return
    errors = parsed.auth_errors
    if is_transient(errors):
        raise TransientError(f"Intacct authentication deferred: {summary(errors)}", **error_fields(errors))
    if session_auth:
        # "Invalid session", "Sign-in information is incorrect", an empty userid: whatever the
        # words, the session is refused; a fresh login's own answer tells whether the user is.
        raise SessionDead()
    raise ConnectionFailure(f"Intacct authentication failed: {summary(errors)}", **error_fields(errors))


def raise_for_result(result: FunctionResult, what: str) -> None:
    """Raise the error class of a failed read/query/probe result; return on success."""
    if result.outcome is Outcome.SUCCESS:
        return
    message = f"Intacct {what} failed: {summary(result.errors)}"
    if result.outcome is Outcome.TRANSIENT:
        raise TransientError(message, outcome_unknown=False, **error_fields(result.errors))
    raise PermanentError(message, **error_fields(result.errors))


def match_results(functions: Sequence[Function], results: Sequence[FunctionResult]) -> list[FunctionResult]:
    """One result per function, in the functions' order, matched by controlid.

    No result at all is an incomplete response (transient, outcome unknown); a function left without
    a result among others gets a transient result of its own, so that its neighbours keep theirs.
    """
    if functions and not results:
        raise TransientError("Intacct answered with an incomplete response: no <result>", outcome_unknown=True)
    by_controlid: dict[str, list[FunctionResult]] = {}
    for result in results:
        by_controlid.setdefault(result.controlid, []).append(result)
    matched: list[FunctionResult] = []
    for function in functions:
        name = function_name(function)
        bucket = by_controlid.get(function.controlid)
        if not bucket:
            missing = ErrorDetail("", "no result returned", "", "")
            matched.append(FunctionResult(function.controlid, name, "", Outcome.TRANSIENT, errors=(missing,)))
            continue
        result = bucket.pop(0)
        # Classify by what we sent, whatever name the gateway echoes.
        outcome = classify_result(name, result.status, result.errors)
        matched.append(result if outcome is result.outcome else replace(result, outcome=outcome))
    return matched
