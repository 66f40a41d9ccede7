"""OAuth2 client-credentials tokens for ServiceTitan, fetched once and shared by all callers."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

import aiohttp

from adapters.errors import ConnectionFailure, TransientError
from adapters.servicetitan.models import ServiceTitanCredentials
from adapters.transport import BodyTooLarge, is_redirect, read_capped, redirect_host

__all__ = ["Observer", "TokenManager"]

Observer = Callable[[str, float], None]

_DEFAULT_LIFETIME = 900.0
# A token answer is a few hundred bytes; more is not a token answer.
MAX_TOKEN_BYTES = 64 * 1024
_OAUTH_ERROR_RE = re.compile(r"^[a-z_]{1,40}$")


class TokenManager:
    """Caches one access token and renews it min(60 s, half its lifetime) before it expires."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: ServiceTitanCredentials,
        *,
        request_timeout: float,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._observer = observer
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        # Bumped when credentials change so that a fetch already in flight is not cached.
        self._generation = 0
        self.fetches = 0
        self.lifetime: float | None = None

    def __repr__(self) -> str:
        # The access token is a credential: whatever prints the object (a traceback, a debugger) sees a mask.
        token = "'***'" if self._token is not None else "None"
        return f"TokenManager(auth_url={self._credentials.auth_url!r}, token={token}, fetches={self.fetches})"

    def set_credentials(self, credentials: ServiceTitanCredentials) -> None:
        """Use new credentials from now on and forget the cached token."""
        self._credentials = credentials
        self._token = None
        self._generation += 1

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        return None

    async def get(self) -> str:
        """The cached token, or a new one when it is missing or due for renewal."""
        token = self._fresh()
        if token is not None:
            return token
        async with self._lock:
            # Another caller may have fetched while this one waited on the lock.
            token = self._fresh()
            return token if token is not None else await self._fetch()

    async def renew(self, stale: str | None) -> str:
        """A token other than ``stale``: fetched now unless another caller already replaced it."""
        async with self._lock:
            token = self._fresh()
            if token is not None and token != stale:
                return token
            return await self._fetch()

    async def fetch_now(self) -> str:
        """A token fetched now, whatever is cached (a probe of the credentials)."""
        async with self._lock:
            return await self._fetch()

    async def _fetch(self) -> str:
        generation = self._generation
        credentials = self._credentials
        form = {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        }
        started = self._clock()
        self.fetches += 1
        try:
            async with self._session.post(
                credentials.auth_url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
                # A 307/308 would re-post client_secret to whatever host it names.
                allow_redirects=False,
            ) as resp:
                status = resp.status
                location = redirect_host(resp.headers) if is_redirect(status) else ""
                body = b"" if location else await read_capped(resp, MAX_TOKEN_BYTES)
        except BodyTooLarge as exc:
            self._observe("transient_error", started)
            raise TransientError(f"ServiceTitan's token answer was refused: {exc}") from None
        except TimeoutError:
            self._observe("transient_error", started)
            raise TransientError("ServiceTitan's token endpoint did not answer in time") from None
        except aiohttp.InvalidURL:
            self._observe("connection_error", started)
            raise ConnectionFailure("ServiceTitan's auth_url is not a valid URL") from None
        except aiohttp.ClientError as exc:
            self._observe("connection_error", started)
            raise TransientError(f"ServiceTitan's token endpoint is unreachable ({type(exc).__name__})") from None

        if location:
            self._observe("connection_error", started)
            raise ConnectionFailure(
                f"ServiceTitan's token endpoint answered HTTP {status}, a redirect to {location}; redirects are"
                " not followed: check servicetitan.auth_url",
                status=status,
            )
        if status in (400, 401):
            self._observe("connection_error", started)
            raise ConnectionFailure(
                f"ServiceTitan refused the client credentials (HTTP {status}{_oauth_error(body)})",
                status=status,
            )
        if status == 429 or status >= 500:
            self._observe("rate_limited" if status == 429 else "transient_error", started)
            raise TransientError(f"ServiceTitan's token endpoint answered HTTP {status}", status=status)
        if status != 200:
            self._observe("connection_error", started)
            raise ConnectionFailure(f"ServiceTitan's token endpoint answered HTTP {status}", status=status)

        token, lifetime = _parse_token(body)
        if token is None:
            self._observe("transient_error", started)
            raise TransientError("ServiceTitan's token endpoint answered without an access token")
        self._observe("ok", started)
        self.lifetime = lifetime  # seconds, as the token endpoint announced it (for an operator's check)
        if generation == self._generation:
            self._token = token
            # Counted from when the request left, so the margin also covers the round trip.
            self._renew_at = started + lifetime - min(60.0, lifetime / 2)
        return token

    def _observe(self, outcome: str, started: float) -> None:
        if self._observer is not None:
            self._observer(outcome, self._clock() - started)


def _parse_token(body: bytes) -> tuple[str | None, float]:
    try:
        doc = json.loads(body)
    except ValueError:
        return None, 0.0
    if not isinstance(doc, dict):
        return None, 0.0
    token = doc.get("access_token")
    lifetime = doc.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = _DEFAULT_LIFETIME
    return (token if isinstance(token, str) and token else None), float(lifetime)


def _oauth_error(body: bytes) -> str:
    """The OAuth error code (e.g. ``invalid_client``) when the body names one; never free text."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    code = doc.get("error") if isinstance(doc, dict) else None
    return f": {code}" if isinstance(code, str) and _OAUTH_ERROR_RE.match(code) else ""
