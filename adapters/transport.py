"""HTTP rules every adapter applies the same way: bounded bodies, no redirects, Retry-After.

A misbehaving or hostile upstream must not be able to exhaust memory (an endless body), divert
credentials (a redirect that re-posts a secret to another host) or park a worker for ever (a
`Retry-After` of a year, of `inf` or of `nan`).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from yarl import URL

__all__ = ["BodyTooLarge", "is_loopback", "is_redirect", "parse_retry_after", "read_capped", "redirect_host"]

_CHUNK = 64 * 1024
_SECONDS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")


def is_loopback(host: str | None) -> bool:
    """Whether `host` names this machine (plain http and credentials without TLS are allowed there)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BodyTooLarge(Exception):
    """The answer's body is longer than the adapter accepts; reading stopped at the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer's body exceeds {limit} bytes")
        self.limit = limit


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than ``limit`` bytes arrived (or are announced)."""
    announced = response.content_length
    if announced is not None and announced > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            # Stop reading: the connection is closed by the caller's context manager, not drained.
            response.close()
            raise BodyTooLarge(limit)
        chunks.append(chunk)


def is_redirect(status: int) -> bool:
    """True for the 3xx statuses that name another location."""
    return 300 <= status < 400


def redirect_host(headers: Mapping[str, str]) -> str:
    """The host a redirect points at, for the error message ("?" when it names none)."""
    location = headers.get("Location") or ""
    try:
        host = URL(location).host
    except (ValueError, TypeError):
        host = None
    return host or "?"


def parse_retry_after(value: str | None, *, maximum: float = math.inf, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delay seconds or HTTP date), clamped to [0, maximum].

    None when the value is absent, unparseable or not finite: the caller's own backoff applies.
    """
    if not value:
        return None
    match = _SECONDS_RE.match(value)
    if match:
        seconds = float(match.group(1))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), max(0.0, maximum))
