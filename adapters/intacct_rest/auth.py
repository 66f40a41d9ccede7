"""OAuth2 client credentials for a headless daemon: one token at a time, minted once for all callers.

The token is renewed a minute before ``expires_in`` runs out (or at 90 % of a shorter life), and
dropped when the API calls it invalid, so that the next request mints a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from adapters.errors import ConnectionFailure, TransientError
from adapters.intacct_rest.envelope import error_fields, error_of, load, retry_after
from adapters.intacct_rest.models import TOKEN_PATH, RestCredentials
from adapters.transport import BodyTooLarge, is_redirect, read_capped

_RENEW_MARGIN_S = 60.0
_MAX_TOKEN_BYTES = 64 * 1024
# When the answer announces no lifetime: six hours is what Sage's examples show.
_DEFAULT_LIFETIME_S = 21600.0


@dataclass(frozen=True)
class Token:
    """An access token and the event-loop time to renew it at."""

    value: str
    renew_at: float

    def __repr__(self) -> str:
        # A credential: tracebacks, debuggers and logs that print the object see a mask.
        return f"Token(value='***', renew_at={self.renew_at!r})"

    __str__ = __repr__


class TokenSource:
    """Mints and caches the access token of one set of client credentials."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        credentials: Callable[[], RestCredentials],
        timeout: aiohttp.ClientTimeout,
        retry_after_max: float = 600.0,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._timeout = timeout
        self._retry_after_max = retry_after_max
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self.minted = 0
        self.lifetime: float | None = None  # expires_in of the last token minted, seconds

    def drop(self, value: str | None = None) -> None:
        """Forget the token (only if it is still ``value``, when given): the next call mints."""
        if value is None or (self._token is not None and self._token.value == value):
            self._token = None

    async def token(self) -> str:
        """A token valid for now; concurrent callers share one mint."""
        token = self._token
        if token is not None and _now() < token.renew_at:
            return token.value
        async with self._lock:
            token = self._token
            if token is not None and _now() < token.renew_at:
                return token.value
            while True:
                credentials = self._credentials()
                token = await self._mint(credentials)
                if credentials is self._credentials():  # not replaced while we minted
                    self._token = token
                    return token.value

    async def _mint(self, c: RestCredentials) -> Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "username": c.username,
        }
        try:
            async with self._http.post(
                c.base_url.rstrip("/") + TOKEN_PATH,
                data=form,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                raw = b"" if is_redirect(status) else await read_capped(response, _MAX_TOKEN_BYTES)
                wait = retry_after(response.headers, self._retry_after_max)
        except TimeoutError:
            raise TransientError("Intacct token request timed out") from None
        except BodyTooLarge:
            raise TransientError("Intacct's token answer was too long") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"Intacct token request failed: {type(exc).__name__}") from None
        body = load(raw)
        if status == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str):
            self.minted += 1
            life = self.lifetime = _lifetime(body.get("expires_in"))
            return Token(body["access_token"], _now() + max(life - _RENEW_MARGIN_S, life * 0.9))
        error = error_of(body)
        detail = f" ({error.text()[:300]})" if error else ""
        fields = error_fields(error)
        if status == 429 or status >= 500:
            raise TransientError(
                f"Intacct token endpoint answered HTTP {status}{detail}", retry_after=wait, status=status, **fields
            )
        # Wrong or inactive client, client not authorized by the company, bad username: an operator must act.
        raise ConnectionFailure(f"Intacct refused the client credentials: HTTP {status}{detail}", status=status,
                                **fields)


def _lifetime(value: object) -> float:
    try:
        life = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _DEFAULT_LIFETIME_S
    return life if life > 0 else _DEFAULT_LIFETIME_S


def _now() -> float:
    return asyncio.get_running_loop().time()
