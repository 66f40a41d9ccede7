"""The simulator's in-memory state: options, credentials, tokens, faults, and data per tenant."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from simulators.servicetitan.faults import Faults, RateBucket, Stats
from simulators.servicetitan.tenant import TenantData
from simulators.servicetitan.timefmt import wall_ticks

__all__ = ["STATE", "ServiceTitanSimOptions", "SimState"]


@dataclass(frozen=True)
class ServiceTitanSimOptions:
    """How the simulator starts; credentials left None accept any non-empty value."""

    client_id: str | None = None
    client_secret: str | None = None
    app_key: str | None = None
    token_ttl: float = 900.0
    export_page_size: int = 500
    recent_changes_delay: float = 900.0
    seed: int | None = None
    # Ticks of 100 ns since the Unix epoch; tests may pin or advance time through it.
    clock: Callable[[], int] | None = None
    max_body_bytes: int = 512 * 1024 * 1024  # a 100,000-record bulk seed is tens of MB


@dataclass
class Credentials:
    """The credentials the simulator enforces; None accepts any non-empty value."""

    client_id: str | None
    client_secret: str | None
    app_key: str | None


class SimState:
    """Everything one simulator instance holds."""

    def __init__(self, options: ServiceTitanSimOptions | None = None) -> None:
        self.options = options or ServiceTitanSimOptions()
        self.clock: Callable[[], int] = self.options.clock or wall_ticks
        self.credentials = Credentials(self.options.client_id, self.options.client_secret, self.options.app_key)
        self.faults = self.default_faults()
        self.rng = random.Random(self.options.seed)
        self.stats = Stats()
        self.tenants: dict[int, TenantData] = {}
        self.tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self.buckets: dict[tuple[str, int], RateBucket] = {}
        self.recent_requests: deque[dict[str, Any]] = deque(maxlen=1000)
        # Set when the app shuts down, so that requests hanging on a timeout fault end at once.
        self.stopping = asyncio.Event()

    def default_faults(self) -> Faults:
        """No faults; page size, token lifetime and the recent-changes delay from the options."""
        return Faults(
            token_ttl=self.options.token_ttl,
            export_page_size=self.options.export_page_size,
            recent_changes_delay=self.options.recent_changes_delay,
            seed=self.options.seed,
        )

    def set_faults(self, changes: dict[str, Any]) -> None:
        """Change some faults (partial update); a ``seed`` reseeds the random source."""
        self.faults.update(changes)
        if changes.get("seed") is not None:
            self.rng.seed(self.faults.seed)
        if "rate_limit_per_second" in changes:
            self.buckets.clear()

    def reset_faults(self) -> None:
        """Back to no faults."""
        self.faults = self.default_faults()
        self.buckets.clear()

    def reset_stats(self) -> None:
        """Zero the counters (requests in flight stay counted) and forget recent requests."""
        in_flight = self.stats.in_flight
        self.stats = Stats(in_flight=in_flight, max_in_flight=in_flight)
        self.recent_requests.clear()

    def tenant(self, tenant_id: int) -> TenantData:
        """The data of one tenant, created empty on first use."""
        data = self.tenants.get(tenant_id)
        if data is None:
            data = self.tenants[tenant_id] = TenantData(tenant_id, self.clock)
        return data

    # ---------------------------------------------------------------- credentials and tokens

    def client_allowed(self, client_id: str, client_secret: str) -> bool:
        """Whether these client credentials would get a token."""
        if not client_id or not client_secret:
            return False
        expected = self.credentials
        return _matches(expected.client_id, client_id) and _matches(expected.client_secret, client_secret)

    def app_key_allowed(self, app_key: str | None) -> bool:
        """Whether an ST-App-Key header value is accepted."""
        return bool(app_key) and _matches(self.credentials.app_key, app_key or "")

    def issue_token(self) -> tuple[str, int]:
        """A new access token and its lifetime in seconds."""
        ttl = self.faults.token_ttl
        token = "sim." + secrets.token_urlsafe(24)
        now = time.monotonic()
        # Drop expired tokens so that a long run does not accumulate them.
        if len(self.tokens) > 1000:
            self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
        self.tokens[token] = now + ttl
        self.stats.tokens_issued += 1
        return token, int(ttl) if float(ttl).is_integer() else max(1, round(ttl))

    def token_valid(self, authorization: str | None) -> bool:
        """Whether an Authorization header carries a live token (``Bearer`` prefix optional)."""
        if not authorization:
            return False
        token = authorization[7:] if authorization[:7].lower() == "bearer " else authorization
        expiry = self.tokens.get(token.strip())
        return expiry is not None and time.monotonic() < expiry

    def expire_tokens(self) -> int:
        """Invalidate every token issued so far; returns how many were live."""
        now = time.monotonic()
        live = sum(1 for exp in self.tokens.values() if exp > now)
        self.tokens.clear()
        return live

    def rate_limit_wait(self, app_key: str, tenant_id: int) -> float:
        """0.0 when the per-second limit lets this call through, else the seconds to wait."""
        rate = self.faults.rate_limit_per_second
        if not rate:
            return 0.0
        bucket = self.buckets.get((app_key, tenant_id))
        if bucket is None or bucket.rate != rate:
            bucket = self.buckets[(app_key, tenant_id)] = RateBucket(rate)
        return bucket.take()


def _matches(expected: str | None, given: str) -> bool:
    if expected is None:
        return bool(given)
    return secrets.compare_digest(expected.encode(), given.encode())


STATE = web.AppKey("servicetitan_sim_state", SimState)
