"""Run-time switchable faults, the per-app rate limit, and the counters that tests read."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Faults:
    """Everything ``PUT /_sim/faults`` may change; rates are probabilities per request."""

    latency: float = 0.0  # seconds added to every API request
    page_latency: float = 0.0  # seconds added to every list or export page
    error_rate: float = 0.0  # share of API requests answered with `error_status`
    error_status: int = 503
    timeout_rate: float = 0.0  # share of API requests that hang for `hang_seconds`, then 504
    hang_seconds: float = 120.0
    rate_limit_rate: float = 0.0  # share of API requests answered 429
    rate_limit_per_second: float | None = None  # a token bucket per (app key, tenant); None = off
    retry_after: float = 1.0  # seconds named by Retry-After and the 429 title
    retry_after_http_date: bool = False  # send Retry-After as an HTTP date instead of seconds
    token_ttl: float = 900.0  # expires_in of new tokens
    duplicate_rows: float = 0.0  # share of a page repeated from the rows before its token
    export_page_size: int = 500
    recent_changes_delay: float = 900.0  # seconds before a change shows without includeRecentChanges
    forbidden: bool = False  # 403 on every API call, as when the app is not connected
    # Deterministic faults for tests: the next N API requests get a 429, a hang, or a 5xx.
    rate_limit_next: int = 0
    timeout_next: int = 0
    error_next: int = 0
    seed: int | None = None  # reseeds the simulator's random source when set
    # What a real (or hostile) deployment may meet: the next N API requests, or token requests,
    # answered 307 to redirect_location; the next N pages answered with a body of oversize_bytes.
    redirect_next: int = 0
    token_redirect_next: int = 0
    redirect_location: str = "https://elsewhere.invalid/collect"
    oversize_next: int = 0
    oversize_bytes: int = 33 * 1024 * 1024

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update, refusing unknown names and out-of-range values."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault '{name}' (known: {', '.join(sorted(known))})")
            setattr(self, name, _checked(name, value))

    def as_json(self) -> dict[str, Any]:
        """The current faults as JSON."""
        return asdict(self)


_RATES = {"error_rate", "timeout_rate", "rate_limit_rate", "duplicate_rows"}
_FLAGS = {"retry_after_http_date", "forbidden"}
_INTS = {
    "error_status",
    "export_page_size",
    "rate_limit_next",
    "timeout_next",
    "error_next",
    "redirect_next",
    "token_redirect_next",
    "oversize_next",
    "oversize_bytes",
}
_OPTIONAL = {"rate_limit_per_second", "seed"}


def _checked(name: str, value: Any) -> Any:
    if name == "redirect_location":
        if not isinstance(value, str) or not value:
            raise ValueError("fault 'redirect_location' must be a URL")
        return value
    if value is None and name in _OPTIONAL:
        return None
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise ValueError(f"fault '{name}' must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault '{name}' must be a number")
    if name == "seed":
        return int(value)
    if value < 0:
        raise ValueError(f"fault '{name}' must not be negative")
    if name in _RATES and value > 1:
        raise ValueError(f"fault '{name}' is a rate between 0 and 1")
    if name in _INTS:
        if name == "export_page_size" and value < 1:
            raise ValueError("fault 'export_page_size' must be at least 1")
        if name == "error_status" and not 500 <= value <= 599:
            raise ValueError("fault 'error_status' must be a 5xx status")
        return int(value)
    return float(value)


class RateBucket:
    """ServiceTitan's per app and tenant limit: ``rate`` calls per second, bursts up to ``rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def take(self) -> float:
        """0.0 when the call may pass, else the seconds until it would."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class Stats:
    """Counters served at ``GET /_sim/stats``."""

    requests: Counter[str] = field(default_factory=Counter)  # by route name
    statuses: Counter[int] = field(default_factory=Counter)  # API answers by HTTP status
    tokens_issued: int = 0
    token_refusals: int = 0
    unauthorized: int = 0  # 401s from API calls
    forbidden: int = 0
    rate_limited_injected: int = 0  # 429s from `rate_limit_rate`
    rate_limited_bucket: int = 0  # 429s from `rate_limit_per_second`
    errors_injected: int = 0  # 5xx from `error_rate`
    timeouts_injected: int = 0
    duplicate_rows_sent: int = 0
    hostile_rows_sent: int = 0
    redirects_injected: int = 0
    oversized_injected: int = 0
    in_flight: int = 0
    max_in_flight: int = 0  # most API requests served at once (checks a client's concurrency cap)

    def as_json(self) -> dict[str, Any]:
        """The counters as JSON."""
        doc = asdict(self)
        doc["requests"] = dict(self.requests)
        doc["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return doc
