"""One HTTP exchange with the REST API: token, entity header, request slots, timeout, error classes.

`Transport.send` returns the status and JSON body of every answer that is about the records (2xx,
207, and the 4xx a record can cause); everything that is about the request or the connection is
raised as the adapter's error classes, exactly where it is first seen.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.errors import AdapterError, ConnectionFailure, PermanentError, TransientError
from adapters.intacct.limiter import PrioritySemaphore
from adapters.intacct_rest.auth import TokenSource
from adapters.intacct_rest.envelope import (
    CREDENTIAL_IDS,
    RestError,
    error_fields,
    error_of,
    is_invalid_token,
    load,
    retry_after,
)
from adapters.intacct_rest.models import ENTITY_HEADER, IDEMPOTENCY_HEADER, RestCredentials
from adapters.transport import BodyTooLarge, is_redirect, read_capped, redirect_host

Observer = Callable[[str, float], None]
PRIORITY: contextvars.ContextVar[bool] = contextvars.ContextVar("intacct_rest_priority", default=False)
# Statuses whose body speaks about the records sent: the caller reads them per record.
RECORD_STATUSES = frozenset({400, 404, 409, 422})
# The XML client's cap: a project query page of 4000 rows is far below it.
MAX_BODY_BYTES = 64 * 1024 * 1024
_OBSERVED = {"connection": "connection_error", "transient": "transient_error", "permanent": "permanent_error"}


@dataclass(frozen=True)
class Answer:
    """A status and JSON body the caller interprets (success or a record-level refusal)."""

    status: int
    body: Any
    error: RestError | None
    replayed: bool = False  # answered from the idempotency cache


class Transport:
    """Bearer-authenticated JSON requests, at most ``max_concurrent`` in flight."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        credentials: RestCredentials,
        *,
        max_concurrent: int,
        request_timeout: float,
        observer: Observer | None,
        retry_after_max: float = 600.0,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent_requests must be at least 1")
        self.credentials = credentials
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._request_timeout = request_timeout
        self._semaphore = PrioritySemaphore(max_concurrent)
        self._observer = observer
        self._retry_after_max = retry_after_max
        self._max_body_bytes = max_body_bytes
        self.tokens = TokenSource(http, lambda: self.credentials, self._timeout, retry_after_max)
        self.in_flight = 0
        self.max_in_flight_seen = 0
        self.requests = 0

    async def send(self, method: str, path: str, body: Any, *, idempotency_key: str | None = None) -> Answer:
        """Send once, or twice when the token turned out invalid (nothing ran then)."""
        for attempt in (1, 2):
            token = await self.tokens.token()
            answer = await self._send(method, path, body, token, idempotency_key)
            if not is_invalid_token(answer.status, answer.error):
                return answer
            self.tokens.drop(token)
            if attempt == 2:
                raise ConnectionFailure(
                    f"Intacct refused a fresh access token: HTTP {answer.status}{_detail(answer.error)}",
                    status=answer.status, **error_fields(answer.error),
                )
        raise AssertionError("unreachable")

    async def _send(self, method: str, path: str, body: Any, token: str, key: str | None) -> Answer:
        c = self.credentials
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if c.entity_id:
            headers[ENTITY_HEADER] = c.entity_id
        if key is not None:
            headers[IDEMPOTENCY_HEADER] = key
        loop = asyncio.get_running_loop()
        async with self._semaphore.slot(PRIORITY.get()):
            self.in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
            self.requests += 1
            started = loop.time()
            outcome: str | None = "success"
            try:
                return await self._exchange(method, c.base_url.rstrip("/") + path, body, headers)
            except AdapterError as exc:
                outcome = _OBSERVED.get(exc.error_class, "transient_error")
                raise
            except asyncio.CancelledError:
                outcome = None
                raise
            finally:
                self.in_flight -= 1
                if outcome is not None and self._observer is not None:
                    self._observer(outcome, loop.time() - started)

    async def _exchange(self, method: str, url: str, body: Any, headers: dict[str, str]) -> Answer:
        try:
            async with self._http.request(
                method, url, json=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                status = response.status
                location = redirect_host(response.headers) if is_redirect(status) else ""
                raw = b"" if location else await read_capped(response, self._max_body_bytes)
                wait = retry_after(response.headers, self._retry_after_max)
                replayed = "x-ia-idempotency-cached-date" in response.headers
        except TimeoutError:
            raise TransientError(
                f"Intacct request timed out after {self._request_timeout:g} s", outcome_unknown=True
            ) from None
        except BodyTooLarge as exc:
            raise TransientError(f"Intacct's answer was too long: {exc}", outcome_unknown=True) from None
        except aiohttp.ClientError as exc:
            raise TransientError(
                f"Intacct request failed: {type(exc).__name__}: {str(exc)[:200]}", outcome_unknown=True
            ) from None
        parsed = load(raw)
        error = error_of(parsed)
        if 200 <= status < 300 and parsed is not None:
            return Answer(status, parsed, error if status != 207 else None, replayed)
        if status == 404 and error is None:
            # Not Intacct saying a record is missing (that comes in its envelope): the path itself is wrong.
            raise ConnectionFailure(f"Intacct answered HTTP 404 at {url.split('?')[0]}: check intacct.rest_url",
                                    status=status)
        if status in RECORD_STATUSES or status == 401:
            if error is not None and (error.code in CREDENTIAL_IDS or error.error_id in CREDENTIAL_IDS):
                raise ConnectionFailure(f"Intacct refused the request: HTTP {status}{_detail(error)}",
                                        status=status, **error_fields(error))
            return Answer(status, parsed, error, replayed)
        fields = error_fields(error)
        if status == 429:
            raise TransientError(f"Intacct rate limit: HTTP 429{_detail(error)}", outcome_unknown=False,
                                 retry_after=wait, status=status, **fields)
        if status >= 500 or status == 408:
            # The API may have applied the request before failing: only a replay or a read can tell.
            raise TransientError(f"Intacct answered HTTP {status}{_detail(error)}", outcome_unknown=True,
                                 retry_after=wait, status=status, **fields)
        if location:
            raise ConnectionFailure(f"Intacct answered HTTP {status}, a redirect to {location}; redirects are not "
                                    "followed: check intacct.rest_url", status=status)
        if status == 403:
            raise ConnectionFailure(f"Intacct refused the request: HTTP {status}{_detail(error)}",
                                    status=status, **fields)
        if 200 <= status < 300:
            raise TransientError(f"Intacct answered HTTP {status} without a JSON body", outcome_unknown=True,
                                 status=status)
        raise PermanentError(f"Intacct refused the request: HTTP {status}{_detail(error)}", status=status, **fields)


def _detail(error: RestError | None) -> str:
    return f" ({error.text()[:300]})" if error is not None else ""
