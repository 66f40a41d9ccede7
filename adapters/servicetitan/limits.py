"""Pacing for ServiceTitan calls: a client-side rate cap, backoff with jitter, Retry-After."""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Callable

from adapters.transport import parse_retry_after

__all__ = ["TokenBucket", "full_jitter", "parse_retry_after", "retry_after_from_title"]


class TokenBucket:
    """Admits at most ``rate`` acquisitions per second on average, with a small burst."""

    def __init__(self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        # A quarter second of burst keeps any one-second window under 1.25 x rate, so 40/s stays
        # well clear of ServiceTitan's 60 calls/s per app and tenant.
        self._burst = max(1.0, burst if burst is not None else rate / 4)
        self._tokens = self._burst
        self._clock = clock
        self._last = clock()
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        """False when the rate is unlimited (0, negative or infinite)."""
        return 0 < self._rate < math.inf

    async def acquire(self) -> None:
        """Wait until one more request fits under the rate."""
        if not self.enabled:
            return
        # The lock queues waiters in arrival order, so none starves.
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)


def full_jitter(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(maximum, initial * 2**(attempt-1))]."""
    ceiling = min(maximum, initial * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0.0, ceiling)


_TITLE_RE = re.compile(r"(\d+(?:\.\d+)?)\s+seconds?\.?\s*$", re.IGNORECASE)


def retry_after_from_title(title: str | None, *, maximum: float = math.inf) -> float | None:
    """Seconds from a 429 problem title ending "... N seconds." (what ServiceTitan's body says), clamped."""
    if not title:
        return None
    m = _TITLE_RE.search(title)
    if m is None:
        return None
    seconds = float(m.group(1))
    return min(seconds, max(0.0, maximum)) if math.isfinite(seconds) else None
