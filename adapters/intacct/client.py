"""The Sage Intacct XML gateway client: sessions, one semaphore for every request, error classes."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import math
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypedDict

import aiohttp

from adapters.errors import AdapterError, ConnectionFailure, PermanentError, TransientError
from adapters.intacct.limiter import PrioritySemaphore
from adapters.intacct.models import (
    MAX_PAGE_SIZE,
    MAX_READ_KEYS,
    ErrorDetail,
    Function,
    FunctionResult,
    IntacctCredentials,
    IntacctProject,
    Outcome,
    QueryProjects,
    ReadProjects,
    function_name,
)
from adapters.intacct.xml import (
    XML_PARSE_ERRORNO,
    ParsedResponse,
    build_request,
    build_session_request,
    classify_result,
    is_invalid_session,
    is_transient,
    parse_response,
)

Observer = Callable[[str, float], None]

_HEADERS = {"Content-Type": "application/xml", "Accept": "application/xml"}
# Several readByName chunks travel in one request, within reason: 20 x 100 keys.
_READ_FUNCTIONS_PER_REQUEST = 20
# Renew this long before the announced expiry, or 10 % of what remains when that is shorter.
_RENEW_MARGIN_S = 60.0
# Set for the requests (session login included) made on behalf of a priority call.
_PRIORITY: contextvars.ContextVar[bool] = contextvars.ContextVar("intacct_priority", default=False)


class _InvalidSession(Exception):
    """The gateway called the session invalid: no function ran, so the request may be resent."""


@dataclass
class _Session:
    session_id: str
    endpoint: str
    renew_at: float  # event-loop time; inf while Intacct announced no timeout

    def __repr__(self) -> str:
        # The session id is a credential: tracebacks, debuggers and logs that print the object see a mask.
        return f"_Session(session_id='***', endpoint={self.endpoint!r}, renew_at={self.renew_at!r})"


class _ErrorFields(TypedDict, total=False):
    errorno: str | None
    description: str | None
    description2: str | None
    correction: str | None


def _fields(errors: Sequence[ErrorDetail]) -> _ErrorFields:
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


def _summary(errors: Sequence[ErrorDetail]) -> str:
    return "; ".join(e.text() for e in errors if e.text())[:500] or "no error text"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body_errors(raw: bytes) -> tuple[ErrorDetail, ...]:
    """The errors of a non-200 XML body, if it is one; anything else gives none."""
    try:
        parsed = parse_response(raw)
    except PermanentError:
        return ()
    return parsed.control_errors or parsed.auth_errors


def raise_for_result(result: FunctionResult, what: str) -> None:
    """Raise the error class of a failed read/query/probe result; return on success."""
    if result.outcome is Outcome.SUCCESS:
        return
    message = f"Intacct {what} failed: {_summary(result.errors)}"
    if result.outcome is Outcome.TRANSIENT:
        raise TransientError(message, outcome_unknown=False, **_fields(result.errors))
    raise PermanentError(message, **_fields(result.errors))


class IntacctClient:
    """One Intacct company: a session, and at most ``max_concurrent_requests`` HTTP requests in flight."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: IntacctCredentials,
        *,
        max_concurrent_requests: int = 2,
        request_timeout: float = 60.0,
        observer: Observer | None = None,
    ) -> None:
        if max_concurrent_requests < 1:
            raise ValueError("max_concurrent_requests must be at least 1")
        self._http = session
        self._credentials = credentials
        self._semaphore = PrioritySemaphore(max_concurrent_requests)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._request_timeout = request_timeout
        self._observer = observer
        self._session_lock = asyncio.Lock()
        self._session: _Session | None = None
        self._generation = 0
        self._prefix = uuid.uuid4().hex[:12]
        self._sequence = itertools.count(1)
        self.in_flight = 0
        self.max_in_flight_seen = 0

    @property
    def credentials(self) -> IntacctCredentials:
        """The credentials in use (their repr masks the passwords)."""
        return self._credentials

    def update_credentials(self, credentials: IntacctCredentials) -> None:
        """Use new credentials from now on; the current session is dropped."""
        self._credentials = credentials
        self._session = None
        self._generation += 1

    # -- public calls --------------------------------------------------------------------------

    async def execute(self, functions: Sequence[Function], *, priority: bool = False) -> list[FunctionResult]:
        """Send all functions in one request; results come back in the functions' order.

        With `priority` the request takes the next free slot ahead of non-priority requests.
        """
        if not functions:
            return []
        if priority and not _PRIORITY.get():
            token = _PRIORITY.set(True)
            try:
                return await self.execute(functions)
            finally:
                _PRIORITY.reset(token)
        controlids = [f.controlid for f in functions]
        if len(set(controlids)) != len(controlids):
            raise ValueError("function controlids must be unique within one request")
        parsed = await self._execute_with_session(functions)
        return _match_results(functions, parsed.results)

    async def read_projects(self, project_ids: Sequence[str], *, priority: bool = False) -> dict[str, IntacctProject]:
        """The projects among ``project_ids`` that exist, by PROJECTID (readByName, 100 keys a function)."""
        keys = list(dict.fromkeys(project_ids))
        chunks = [keys[i : i + MAX_READ_KEYS] for i in range(0, len(keys), MAX_READ_KEYS)]
        found: dict[str, IntacctProject] = {}
        for start in range(0, len(chunks), _READ_FUNCTIONS_PER_REQUEST):
            functions = [
                ReadProjects(self._next_control_id("read"), chunk)
                for chunk in chunks[start : start + _READ_FUNCTIONS_PER_REQUEST]
            ]
            for result in await self.execute(functions, priority=priority):
                raise_for_result(result, "readByName")
                found.update((p.project_id, p) for p in result.projects)
        return found

    async def iter_projects(
        self, patterns: Sequence[str], page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[list[IntacctProject]]:
        """Pages of the projects whose PROJECTID is ``like`` one of ``patterns``, by RECORDNO."""
        offset = 0
        while True:
            query = QueryProjects(self._next_control_id("query"), tuple(patterns), page_size, offset)
            [result] = await self.execute([query])
            raise_for_result(result, "query")
            page = list(result.projects)
            if page:
                yield page
            count = _int_attr(result, "count", len(page))
            if _int_attr(result, "numremaining", 0) <= 0 or count <= 0:
                return
            offset += count

    async def probe(self) -> None:
        """A cheap authenticated call; raises like ``execute``, and ConnectionFailure if reads are refused."""
        [result] = await self.execute([QueryProjects(self._next_control_id("probe"), (), page_size=1)])
        if result.outcome in (Outcome.SUCCESS, Outcome.TRANSIENT):
            raise_for_result(result, "probe query")
            return
        # The user may log in but not read PROJECT: the connection is unusable for our work.
        message = f"Intacct probe query failed: {_summary(result.errors)}"
        raise ConnectionFailure(message, **_fields(result.errors))

    # -- sessions ------------------------------------------------------------------------------

    async def _execute_with_session(self, functions: Sequence[Function]) -> ParsedResponse:
        for _ in range(2):
            session = await self._ensure_session()
            body = build_request(
                self._credentials,
                functions,
                session_id=session.session_id,
                control_id=self._next_control_id(),
            )
            try:
                parsed = await self._send(session.endpoint, body, session_auth=True)
            except _InvalidSession:
                # Authentication failed, so no function ran: a new session and one resend are safe.
                self._drop_session(session)
                continue
            self._slide(session, parsed.session_timeout)
            return parsed
        raise TransientError("Intacct called a fresh session invalid", outcome_unknown=False, errorno="XL03000006")

    async def _ensure_session(self) -> _Session:
        session = self._session
        if session is not None and _now() < session.renew_at:
            return session
        async with self._session_lock:
            # Concurrent callers queue here; the first logs in and the others reuse its session.
            session = self._session
            if session is not None and _now() < session.renew_at:
                return session
            while True:
                generation = self._generation
                session = await self._login(self._credentials)
                if generation == self._generation:  # credentials unchanged during the login
                    self._session = session
                    return session

    async def _login(self, credentials: IntacctCredentials) -> _Session:
        body = build_session_request(credentials, self._next_control_id("session"))
        parsed = await self._send(credentials.endpoint_url, body, session_auth=False)
        if not parsed.session_id:
            errors = tuple(e for r in parsed.results for e in r.errors)
            message = f"Intacct getAPISession returned no session: {_summary(errors)}"
            if any(r.outcome is Outcome.TRANSIENT for r in parsed.results):
                raise TransientError(message, outcome_unknown=False, **_fields(errors))
            raise ConnectionFailure(message, **_fields(errors))
        session = _Session(parsed.session_id, parsed.session_endpoint or credentials.endpoint_url, math.inf)
        self._slide(session, parsed.session_timeout)
        return session

    def _slide(self, session: _Session, timeout: datetime | None) -> None:
        if timeout is None:
            return  # no announcement: keep the session until Intacct calls it invalid
        remaining = (timeout - datetime.now(UTC)).total_seconds()
        session.renew_at = _now() + remaining - min(_RENEW_MARGIN_S, 0.1 * max(remaining, 0.0))

    def _drop_session(self, session: _Session) -> None:
        if self._session is session:
            self._session = None

    def _next_control_id(self, kind: str = "req") -> str:
        return f"{kind}-{self._prefix}-{next(self._sequence)}"

    # -- one HTTP request ----------------------------------------------------------------------

    async def _send(self, url: str, body: bytes, *, session_auth: bool) -> ParsedResponse:
        async with self._semaphore.slot(_PRIORITY.get()):
            self.in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
            started = _now()
            outcome: str | None = None
            try:
                parsed = await self._post(url, body, session_auth=session_auth)
                outcome = "ok"
                return parsed
            except _InvalidSession:
                outcome = "invalid_session"
                raise
            except AdapterError as exc:
                outcome = _OBSERVED.get(exc.error_class, "transient_error")
                raise
            finally:
                self.in_flight -= 1
                if outcome is not None and self._observer is not None:
                    self._observer(outcome, _now() - started)

    async def _post(self, url: str, body: bytes, *, session_auth: bool) -> ParsedResponse:
        try:
            async with self._http.post(
                url, data=body, headers=_HEADERS, timeout=self._timeout, allow_redirects=False
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            raise TransientError(
                f"Intacct request timed out after {self._request_timeout:g} s", outcome_unknown=True
            ) from None
        except aiohttp.ClientError as exc:
            raise TransientError(
                f"Intacct request failed: {type(exc).__name__}: {str(exc)[:200]}", outcome_unknown=True
            ) from None
        if status != 200:
            _raise_for_http_status(status, raw, retry_after)
        parsed = parse_response(raw)
        _raise_for_control(parsed, retry_after)
        _raise_for_authentication(parsed, session_auth=session_auth)
        return parsed


_OBSERVED = {"connection": "connection_error", "transient": "transient_error", "permanent": "permanent_error"}


def _now() -> float:
    return asyncio.get_running_loop().time()


def _int_attr(result: FunctionResult, name: str, default: int) -> int:
    try:
        return int(result.data_attrs.get(name, default))
    except ValueError:
        return default


def _raise_for_http_status(status: int, raw: bytes, retry_after: str | None) -> None:
    errors = _body_errors(raw)
    fields = _fields(errors)
    detail = f" ({_summary(errors)})" if errors else ""
    if status == 429 or is_transient(errors):
        raise TransientError(
            f"Intacct rate limit: HTTP {status}{detail}",
            outcome_unknown=False,
            retry_after=_retry_after(retry_after),
            status=status,
            **fields,
        )
    if status >= 500 or status == 408:
        # The gateway may have applied the request before failing (524: the CDN gave up waiting).
        raise TransientError(f"Intacct answered HTTP {status}{detail}", outcome_unknown=True, status=status, **fields)
    if status == 413:
        raise PermanentError(f"Intacct refused the request size: HTTP {status}{detail}", status=status, **fields)
    # 401 XMLGW_JPP0002, 400 GW-0011, 403, 404 or a redirect: credentials or endpoint are wrong.
    raise ConnectionFailure(f"Intacct refused the request: HTTP {status}{detail}", status=status, **fields)


def _raise_for_control(parsed: ParsedResponse, retry_after: str | None) -> None:
    if parsed.control_status == "success":
        return
    errors = parsed.control_errors
    message = f"Intacct control failure: {_summary(errors)}"
    if any(e.errorno.strip() == XML_PARSE_ERRORNO for e in errors):
        raise PermanentError(message, **_fields(errors))
    if is_transient(errors):
        raise TransientError(message, outcome_unknown=False, retry_after=_retry_after(retry_after), **_fields(errors))
    # XL03000006 (sender id/password), PL04000055 (company expired) and the like: nothing ran.
    raise ConnectionFailure(message, **_fields(errors))


def _raise_for_authentication(parsed: ParsedResponse, *, session_auth: bool) -> None:
    if parsed.auth_status in (None, "success"):
        return
    errors = parsed.auth_errors
    if is_transient(errors):
        raise TransientError(f"Intacct authentication deferred: {_summary(errors)}", **_fields(errors))
    if session_auth and is_invalid_session(errors):
        raise _InvalidSession()
    raise ConnectionFailure(f"Intacct authentication failed: {_summary(errors)}", **_fields(errors))


def _match_results(functions: Sequence[Function], results: Sequence[FunctionResult]) -> list[FunctionResult]:
    by_controlid: dict[str, list[FunctionResult]] = {}
    for result in results:
        by_controlid.setdefault(result.controlid, []).append(result)
    matched: list[FunctionResult] = []
    for function in functions:
        name = function_name(function)
        bucket = by_controlid.get(function.controlid)
        if not bucket:
            matched.append(
                FunctionResult(
                    controlid=function.controlid,
                    function=name,
                    status="",
                    outcome=Outcome.TRANSIENT,
                    errors=(ErrorDetail("", "no result returned", "", ""),),
                )
            )
            continue
        result = bucket.pop(0)
        # Classify by what we sent, whatever name the gateway echoes.
        outcome = classify_result(name, result.status, result.errors)
        matched.append(result if outcome is result.outcome else replace(result, outcome=outcome))
    return matched
