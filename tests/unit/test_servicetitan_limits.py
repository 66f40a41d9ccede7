"""ServiceTitan pacing helpers: Retry-After, the 429 title, backoff with jitter, the rate cap."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from adapters.servicetitan.limits import TokenBucket, full_jitter, parse_retry_after, retry_after_from_title


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.25 ") == 0.25
    assert parse_retry_after("0") == 0.0


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert header.endswith("GMT")
    assert parse_retry_after(header, now=now) == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "Wed, 99 Foo 2026"])
def test_retry_after_unusable(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_retry_after_from_problem_title() -> None:
    assert retry_after_from_title("Rate limit is exceeded. Try again in 12 seconds.") == 12.0
    assert retry_after_from_title("Rate limit is exceeded. Try again in 1 second.") == 1.0
    assert retry_after_from_title("Too many requests") is None
    assert retry_after_from_title(None) is None


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    rng = random.Random(3)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)]:
        waits = [full_jitter(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2  # the whole range is used, not a fixed delay


async def test_token_bucket_caps_the_rate() -> None:
    bucket = TokenBucket(100.0)  # burst of 25, then 100/s
    started = time.monotonic()
    for _ in range(45):
        await bucket.acquire()
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 1.0  # 20 beyond the burst at 100/s take about 0.2 s


async def test_token_bucket_serves_concurrent_waiters() -> None:
    bucket = TokenBucket(200.0, burst=1)
    started = time.monotonic()
    await asyncio.gather(*(bucket.acquire() for _ in range(21)))
    assert time.monotonic() - started >= 0.09


async def test_unlimited_bucket_never_waits() -> None:
    for rate in (0.0, float("inf")):
        bucket = TokenBucket(rate)
        assert not bucket.enabled
        for _ in range(1000):
            await bucket.acquire()
