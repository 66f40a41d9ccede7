"""Whether PostgreSQL answers, as `/status`, `/metrics`, `/readyz` and the systemd status line show it.

The daemon keeps running while the database is away (its loops retry), so the endpoints that
monitoring reads must keep answering too: each asks `check()` first and leaves out what only the
database knows, instead of failing with a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from daemon.store.errors import DB_ERRORS
from daemon.store.rows import RecordError, error_json

OK, ERROR, UNKNOWN = "ok", "error", "unknown"
CHECK_TIMEOUT_S = 2.0


class DatabaseHealth:
    """The last known state of the database connection: `ok`, `error` or `unknown`, since when, why."""

    def __init__(self) -> None:
        self.state = UNKNOWN
        self.since = datetime.now(UTC)
        self.last_error: RecordError | None = None
        self._listeners: list[Callable[[str, RecordError | None], Awaitable[None]]] = []

    def on_change(self, listener: Callable[[str, RecordError | None], Awaitable[None]]) -> None:
        """Await `listener(state, error)` after each change of state."""
        self._listeners.append(listener)

    @property
    def up(self) -> bool:
        return self.state == OK

    async def check(self, pool: asyncpg.Pool) -> bool:
        """Ask the server (bounded by CHECK_TIMEOUT_S); record and return whether it answered."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except DB_ERRORS as exc:
            await self.failed(exc)
            return False
        await self.succeeded()
        return True

    async def succeeded(self) -> None:
        await self._set(OK, None)

    async def failed(self, exc: BaseException) -> None:
        text = " ".join(str(exc).split()) or "no answer"
        error = RecordError("connection", f"{type(exc).__name__}: {text}"[:500])
        await self._set(ERROR, error)

    async def _set(self, state: str, error: RecordError | None) -> None:
        changed = state != self.state
        self.last_error = error
        if not changed:
            return
        self.state = state
        self.since = datetime.now(UTC)
        for listener in self._listeners:
            await listener(state, error)

    def public(self) -> dict[str, Any]:
        """The `database` section of /status."""
        return {"state": self.state, "since": self.since.isoformat().replace("+00:00", "Z"),
                "last_error": error_json(self.last_error)}
