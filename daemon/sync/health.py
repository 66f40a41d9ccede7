"""The health of a connection to an external system: `unknown`, `ok` or `error` (shown in /status).

A connection-class error (credentials refused, company expired) puts it in `error` at once. Transient
failures do so only when they are *sustained*: every request failing for `outage_after` and at least
`outage_min_failures` times in a row, so that a fault storm of 5xx and timeouts is retried, while a
real outage parks the queue instead of burning every record's attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from adapters.errors import AdapterError
from daemon import logs
from daemon.store import RecordError, error_json

log = logs.get("st_intacct_sync.health")

OK, ERROR, UNKNOWN = "ok", "error", "unknown"


def safe_error(exc: BaseException) -> RecordError:
    """An error as stored and served: its class and the service's own texts, never a request."""
    if isinstance(exc, AdapterError):
        error = RecordError.from_json(exc.as_error_fields())
        assert error is not None  # an adapter error always has a class
        return error
    return RecordError("transient", f"{type(exc).__name__}: {exc}")


class ConnectionMonitor:
    """Tracks one system's connection state and wakes whoever waits for it to be usable."""

    def __init__(
        self,
        system: str,
        *,
        outage_after: float = 30.0,
        outage_min_failures: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system = system
        self.state = UNKNOWN
        self.since = datetime.now(UTC)
        self.last_error: RecordError | None = None
        self.outage_after = outage_after
        self.outage_min_failures = outage_min_failures
        self._clock = clock
        self._failures = 0
        self._first_failure: float | None = None
        self._usable = asyncio.Event()
        self._usable.set()  # unknown counts as usable: the first request finds out
        self._listeners: list[Callable[[str, RecordError | None], Awaitable[None]]] = []
        self.probe_now = asyncio.Event()

    def on_change(self, listener: Callable[[str, RecordError | None], Awaitable[None]]) -> None:
        """Await `listener(state, error)` after each change of state."""
        self._listeners.append(listener)

    @property
    def usable(self) -> bool:
        return self.state != ERROR

    @property
    def blocking_error(self) -> RecordError:
        """What records held back while the connection is in error carry as their last error."""
        return self.last_error or RecordError("connection", f"the {self.system} connection is in error")

    async def wait_usable(self) -> None:
        await self._usable.wait()

    async def first_probe(self, call: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> None:
        """At start: one probe of the system, whatever it answers (the daemon starts either way)."""
        try:
            await asyncio.wait_for(call(), timeout)
        except Exception as exc:  # classified here; nothing is raised
            await self.failed(exc)
            log.warning("connection_check_failed", system=self.system, error=f"{exc}")
        else:
            await self.succeeded()

    async def succeeded(self) -> None:
        """A request got an answer from the service."""
        self._failures, self._first_failure = 0, None
        if self.state != OK:
            await self._set(OK, None)

    async def failed(self, exc: BaseException) -> None:
        """A request failed; `exc` is classified by its adapter."""
        error = safe_error(exc)
        if error.error_class == "connection":
            await self._set(ERROR, error)
            return
        if error.error_class != "transient":
            # A refused record says the connection works.
            await self.succeeded()
            return
        now = self._clock()
        self._failures += 1
        if self._first_failure is None:
            self._first_failure = now
        sustained = (self._failures >= self.outage_min_failures
                     and now - self._first_failure >= self.outage_after)
        if sustained and self.state != ERROR:
            await self._set(ERROR, replace(error, description=f"service unreachable for "
                                           f"{now - self._first_failure:.0f}s: {error.description}"))
        elif self.state == ERROR:
            self.last_error = error

    async def _set(self, state: str, error: RecordError | None) -> None:
        changed = state != self.state
        self.state = state
        self.last_error = error
        if changed:
            self.since = datetime.now(UTC)
        if state == ERROR:
            self._usable.clear()
        else:
            self._usable.set()
        if changed:
            for listener in self._listeners:
                await listener(state, error)

    def public(self) -> dict[str, Any]:
        """The connection as /status shows it."""
        return {
            "state": self.state,
            "since": self.since.isoformat().replace("+00:00", "Z"),
            "last_error": error_json(self.last_error),
        }
