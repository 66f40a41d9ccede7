"""Retry policy: full-jitter exponential backoff and the attempt budget."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from statemachine.states import Trigger


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a record is retried after transient errors."""

    max_attempts: int = 10
    backoff_initial: timedelta = timedelta(seconds=2)
    backoff_max: timedelta = timedelta(minutes=10)

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the wait after the `attempt`-th failed attempt (1-based), in seconds."""
        exponent = min(max(attempt - 1, 0), 62)  # 2**62 seconds is already far beyond any cap
        return min(self.backoff_max.total_seconds(), self.backoff_initial.total_seconds() * 2**exponent)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: a uniform wait in [0, ceiling], so that retries of a batch spread out."""
        return (rng or random).uniform(0.0, self.ceiling(attempt))

    def after_transient(self, attempts: int) -> Trigger:
        """`retry_later` while attempts remain, else `fail` (`attempts` includes the one that failed)."""
        return Trigger.RETRY_LATER if attempts < self.max_attempts else Trigger.FAIL
