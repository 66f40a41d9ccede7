"""One replica per tenant runs the poller and the reconciliation scheduler (docs/architecture.md, "Guarantees").

Leadership is a PostgreSQL session advisory lock held on a connection of its own: when the leader
dies, its session ends and the server releases the lock at once; the others try every few seconds,
so one takes over well within two leases. A leader that loses its connection stops leading before it
tries to lock again, so two leaders never overlap for longer than it takes to notice a dead socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg

from daemon import logs
from daemon.store import DB_ERRORS, try_lock

log = logs.get("st_intacct_sync.leader")



def _connection_failure(exc: BaseException) -> bool:
    """Whether `exc` is a database error, or a group (from the work's TaskGroup) of nothing else: what
    ends a term of leadership without being a bug (the lock's session, or the work's database, failed)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_connection_failure(e) for e in exc.exceptions)
    return isinstance(exc, DB_ERRORS)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def lead(
    dsn: str,
    key: int,
    role: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    retry_every: float = 5.0,
    check_every: float = 5.0,
    connect: Callable[[str], Awaitable[asyncpg.Connection]] | None = None,
) -> None:
    """Run `work()` whenever this process holds the lock `key`; never returns unless cancelled."""
    connect = connect or (lambda d: asyncpg.connect(d, timeout=10))
    timeout = max(check_every, 2.0)  # for one trivial query; shorter would step down on a busy server
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect(dsn)
            while not await try_lock(conn, key, timeout=timeout):
                await asyncio.sleep(retry_every)
            log.info("leadership_acquired", role=role)
            task = asyncio.create_task(work(), name=f"{role}-work")
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=check_every)
                    if not task.done():
                        # Raises when the session is gone; the timeout also catches a silent network
                        # partition, after which the server may soon end the session and free the lock.
                        await conn.fetchval("SELECT 1", timeout=timeout)
                task.result()  # the work ended on its own: a bug, or an error it could not handle
                raise RuntimeError(f"{role} stopped unexpectedly")
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        except Exception as exc:
            # The work runs its parts in a TaskGroup: a database error there arrives as an
            # ExceptionGroup, and means the same as losing the lock's own connection (step down, retry).
            if not _connection_failure(exc):
                raise
            log.warning("leadership_connection_lost", role=role, error=_describe(exc))
            await asyncio.sleep(min(retry_every, 2.0))
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
