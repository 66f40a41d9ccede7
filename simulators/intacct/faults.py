"""Fault settings switchable at run time, and the per-company concurrency limit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

RATES = (
    "error_rate",
    "timeout_rate",
    "lost_answer_rate",
    "rate_limit_rate",
    "http_401_rate",
    "html_200_rate",
    "cut_off_rate",
    "dl02000001_rate",
    "redirect_rate",
    "oversize_rate",
)
CONCURRENCY_LEVELS = ("control", "function")
# How the gateway says that a session is dead: the real one has several wordings.
SESSION_DEATHS = ("invalid_session", "sign_in_incorrect", "empty_userid", "http_401")
FLAGS = ("announce_session_timeout", "clear_by_empty_element")


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how slowly; every field may be changed through ``PUT /_sim/faults``."""

    latency: float = 0.0  # seconds added to every request that reaches the company
    latency_per_function: float = 0.0  # seconds added per function of the request
    error_rate: float = 0.0  # HTTP 500/502/503 before anything is applied
    timeout_rate: float = 0.0  # hang for hang_seconds, apply or not at random, answer late
    hang_seconds: float = 30.0
    lost_answer_rate: float = 0.0  # apply the functions, then answer 502
    rate_limit_rate: float = 0.0  # HTTP 429 with a GW-0010 body and Retry-After
    retry_after: float = 1.0  # seconds announced in Retry-After
    max_concurrent: int | None = 2  # Intacct's per-company limit; None: unlimited
    concurrency_wait: float = 30.0  # a request beyond the limit waits this long for a slot
    concurrency_error_level: str = "control"  # where "too many operations" is reported
    session_ttl: float = 3600.0  # sliding session lifetime
    session_max_age: float | None = None  # absolute session lifetime (forced expiry)
    http_401_rate: float = 0.0  # HTTP 401 XMLGW_JPP0002
    # What stands in front of the real gateway, and what it answers that the SDKs had to learn:
    html_200_rate: float = 0.0  # HTTP 200 with an HTML maintenance page; nothing applied
    cut_off_rate: float = 0.0  # apply the functions, then a 200 body cut off mid-document
    dl02000001_rate: float = 0.0  # per function: DL02000001 "There was an error processing the request."
    redirect_rate: float = 0.0  # HTTP 307 to redirect_location before anything is read
    redirect_location: str = "https://maintenance.invalid/ia/xml/xmlgw.phtml"
    oversize_rate: float = 0.0  # apply the functions, then a 200 body of oversize_bytes
    oversize_bytes: int = 64 * 1024 * 1024 + 1024
    session_death: str = "invalid_session"  # the wording of a refused session: one of SESSION_DEATHS
    announce_session_timeout: bool = True  # false: no <sessiontimeout> in any answer
    # false: an update's empty PARENTID/CUSTOMERID is ignored (success, old value kept), as the real
    # gateway may do: no SDK clears a field this way, so nobody has shown that it works.
    clear_by_empty_element: bool = True

    def changed(self, changes: Mapping[str, object]) -> Faults:
        """A copy with ``changes`` applied; raises ValueError naming the first bad key."""
        known = {f.name: f for f in fields(self)}
        values: dict[str, object] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}")
            values[key] = _coerce(key, value)
        return replace(self, **values)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """The settings as JSON-ready values."""
        return asdict(self)


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault {key!r} must be a number")
    if value < 0:
        raise ValueError(f"fault {key!r} must not be negative")
    return float(value)


def _coerce(key: str, value: object) -> object:
    if key in FLAGS:
        if not isinstance(value, bool):
            raise ValueError(f"fault {key!r} must be true or false")
        return value
    if key == "session_death":
        if value not in SESSION_DEATHS:
            raise ValueError(f"fault {key!r} must be one of {', '.join(SESSION_DEATHS)}")
        return value
    if key == "redirect_location":
        if not isinstance(value, str) or not value:
            raise ValueError(f"fault {key!r} must be a URL")
        return value
    if key == "oversize_bytes":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"fault {key!r} must be a positive integer")
        return value
    if key == "concurrency_error_level":
        if value not in CONCURRENCY_LEVELS:
            raise ValueError(f"fault {key!r} must be one of {', '.join(CONCURRENCY_LEVELS)}")
        return value
    if key in ("max_concurrent", "session_max_age") and value is None:
        return None
    if key == "max_concurrent":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("fault 'max_concurrent' must be an integer >= 1 or null")
        return value
    number = _number(key, value)
    if key in RATES and number > 1:
        raise ValueError(f"fault {key!r} is a probability between 0 and 1")
    if key in ("session_ttl", "session_max_age") and number <= 0:
        raise ValueError(f"fault {key!r} must be positive")
    return number


class ConcurrencyLimiter:
    """At most ``limit`` requests of one company at once; the others wait for a slot, up to a bound."""

    def __init__(self) -> None:
        self.active = 0
        self._condition = asyncio.Condition()

    async def acquire(self, limit: int | None, wait: float) -> bool:
        """Take a slot, waiting at most ``wait`` seconds; False when none opened in time."""
        async with self._condition:
            if limit is not None and self.active >= limit:
                try:
                    async with asyncio.timeout(wait):
                        await self._condition.wait_for(lambda: self.active < limit)
                except TimeoutError:
                    return False
            self.active += 1
            return True

    async def release(self) -> None:
        """Give a slot back and wake the waiters."""
        async with self._condition:
            self.active -= 1
            self._condition.notify_all()
