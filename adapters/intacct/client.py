"""The Sage Intacct XML gateway client: sessions, one semaphore for every request, error classes."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from yarl import URL

from adapters.errors import AdapterError, ConnectionFailure, TransientError
from adapters.intacct.answers import (
    SessionDead,
    error_fields,
    match_results,
    raise_for_result,
    read_answer,
    summary,
)
from adapters.intacct.limiter import PrioritySemaphore
from adapters.intacct.models import (
    MAX_PAGE_SIZE,
    MAX_READ_KEYS,
    Function,
    FunctionResult,
    IntacctCredentials,
    IntacctProject,
    Outcome,
    QueryProjects,
    ReadProjects,
)
from adapters.intacct.xml import ParsedResponse, build_request, build_session_request
from adapters.transport import BodyTooLarge, is_loopback, read_capped

Observer = Callable[[str, float], None]

_HEADERS = {"Content-Type": "application/xml", "Accept": "application/xml"}
# Several readByName chunks travel in one request, within reason: 20 x 100 keys.
_READ_FUNCTIONS_PER_REQUEST = 20
# Renew this long before the announced expiry, or 10 % of what remains when that is shorter.
_RENEW_MARGIN_S = 60.0
# Set for the requests (session login included) made on behalf of a priority call.
_PRIORITY: contextvars.ContextVar[bool] = contextvars.ContextVar("intacct_priority", default=False)
# The largest answer read: 2,000 projects of a query page are a few MB; more is not Intacct.
MAX_BODY_BYTES = 64 * 1024 * 1024
# A query stops this many pages beyond the total Intacct announced on its first page (projects
# created while paging shift the offsets a little; an upstream that never ends must not).
_QUERY_MARGIN_PAGES = 2
# Session endpoints are trusted on the configured host or under Intacct's own domain only.
_INTACCT_DOMAIN = "intacct.com"


@dataclass
class _Session:
    session_id: str
    endpoint: str
    renew_at: float  # event-loop time

    def __repr__(self) -> str:
        # The session id is a credential: tracebacks, debuggers and logs that print the object see a mask.
        return f"_Session(session_id='***', endpoint={self.endpoint!r}, renew_at={self.renew_at!r})"


def trusted_endpoint(endpoint: str, configured: str) -> str:
    """``endpoint`` when a session may be sent there, else ConnectionFailure naming its host.

    The login answer names where the session's requests go; each of them carries the sender
    password and the session id, so only ``https`` on the configured host or a subdomain of
    intacct.com is accepted (plain ``http`` only on loopback, where the simulators run).
    """
    try:
        url, base = URL(endpoint), URL(configured)
        host, base_host = (url.host or "").lower(), (base.host or "").lower()
    except (ValueError, TypeError):
        raise ConnectionFailure("Intacct's login answer named a session endpoint that is not a URL") from None
    on_intacct = host == _INTACCT_DOMAIN or host.endswith("." + _INTACCT_DOMAIN)
    if url.scheme == "https" and host and (host == base_host or on_intacct):
        return endpoint
    if url.scheme == "http" and is_loopback(host) and is_loopback(base_host):
        return endpoint
    raise ConnectionFailure(
        f"Intacct's login answer named the session endpoint host {host or '?'} ({url.scheme or 'no'} scheme),"
        f" which is neither https on {base_host or '?'} nor on {_INTACCT_DOMAIN}: refused"
    )


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
        session_max_age: float = 1800.0,
        retry_after_max: float = 600.0,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if max_concurrent_requests < 1:
            raise ValueError("max_concurrent_requests must be at least 1")
        if session_max_age <= 0:
            raise ValueError("session_max_age must be positive")
        # A session whose login announced no <sessiontimeout> is renewed after this many seconds.
        self.session_max_age = session_max_age
        self.retry_after_max = retry_after_max
        self._max_body_bytes = max_body_bytes
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
        return match_results(functions, parsed.results)

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
        """Pages of the projects whose PROJECTID is ``like`` one of ``patterns``, by RECORDNO.

        The offset advances by the rows actually received, whatever ``count`` says; paging stops at
        the total announced on the first page plus a margin, and a page that brings nothing while
        more is announced is a TransientError: a misbehaving upstream cannot keep a caller (and
        whatever lock it holds) paging for ever.
        """
        offset = 0
        limit: int | None = None
        while True:
            query = QueryProjects(self._next_control_id("query"), tuple(patterns), page_size, offset)
            [result] = await self.execute([query])
            raise_for_result(result, "query")
            page = list(result.projects)
            remaining = _int_attr(result, "numremaining", 0)
            if limit is None:
                announced = _int_attr(result, "totalcount", len(page) + max(remaining, 0))
                limit = max(announced, 0) + _QUERY_MARGIN_PAGES * page_size
            if page:
                yield page
            if remaining <= 0:
                return
            if not page:
                raise TransientError(
                    f"Intacct's query page at offset {offset} brought no rows while announcing {remaining} more",
                    outcome_unknown=False,
                )
            offset += len(page)
            if offset >= limit:
                return

    async def describe(self) -> dict[str, object]:
        """What the login shows, for an operator's check: company, user, session endpoint and lifetime."""
        session = await self._ensure_session()
        c = self._credentials
        return {"api": "xml", "company": c.company_id, "user": c.user_id, "entity": c.entity_id,
                "session_endpoint": session.endpoint, "session_renews_in_s": round(max(0.0, session.renew_at - _now()))}

    async def probe(self) -> None:
        """A cheap authenticated call; raises like ``execute``, and ConnectionFailure if reads are refused."""
        [result] = await self.execute([QueryProjects(self._next_control_id("probe"), (), page_size=1)])
        if result.outcome in (Outcome.SUCCESS, Outcome.TRANSIENT):
            raise_for_result(result, "probe query")
            return
        # The user may log in but not read PROJECT: the connection is unusable for our work.
        message = f"Intacct probe query failed: {summary(result.errors)}"
        raise ConnectionFailure(message, **error_fields(result.errors))

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
            except SessionDead:
                # The session was refused, so no function ran: a new session and one resend are safe.
                self._drop_session(session)
                continue
            self._slide(session, parsed.session_timeout)
            return parsed
        # The fresh login was accepted, so the connection works; its session was refused at once.
        raise TransientError("Intacct refused a freshly opened session", outcome_unknown=False)

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
            message = f"Intacct getAPISession returned no session: {summary(errors)}"
            if not parsed.results:
                raise TransientError(f"{message} (no result at all)", outcome_unknown=False)
            if any(r.outcome is Outcome.TRANSIENT for r in parsed.results):
                raise TransientError(message, outcome_unknown=False, **error_fields(errors))
            raise ConnectionFailure(message, **error_fields(errors))
        endpoint = trusted_endpoint(parsed.session_endpoint or credentials.endpoint_url, credentials.endpoint_url)
        # Without an announced timeout the session lives session_max_age at most: kept for ever, a
        # session Intacct ended in silence would be refused on every request.
        session = _Session(parsed.session_id, endpoint, _now() + self.session_max_age)
        self._slide(session, parsed.session_timeout)
        return session

    def _slide(self, session: _Session, timeout: datetime | None) -> None:
        if timeout is None:
            return  # no announcement: the renewal planned so far stands
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
            except SessionDead:
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
                raw = await read_capped(response, self._max_body_bytes)
                status = response.status
                headers = response.headers
        except TimeoutError:
            raise TransientError(
                f"Intacct request timed out after {self._request_timeout:g} s", outcome_unknown=True
            ) from None
        except BodyTooLarge as exc:
            # The functions ran (or not) and their answer is lost in the flood: as a lost answer.
            raise TransientError(f"Intacct's answer was refused: {exc}", outcome_unknown=True) from None
        except aiohttp.ClientError as exc:
            raise TransientError(
                f"Intacct request failed: {type(exc).__name__}: {str(exc)[:200]}", outcome_unknown=True
            ) from None
        return read_answer(status, raw, headers, session_auth=session_auth, retry_after_max=self.retry_after_max)


_OBSERVED = {"connection": "connection_error", "transient": "transient_error", "permanent": "permanent_error"}


def _now() -> float:
    return asyncio.get_running_loop().time()


def _int_attr(result: FunctionResult, name: str, default: int) -> int:
    raw = result.data_attrs.get(name)
    if raw is None or not raw.strip().isdigit() or len(raw.strip()) > 12:
        return default
    return int(raw)
