"""One replica per tenant runs the poller and the reconciliation scheduler (DESIGN.md §4, "Replicas").

Leadership is a PostgreSQL session advisory lock held on a connection of its own: when the leader
dies, its session ends and the server releases the lock at once; the others try every few seconds,
so one takes over well within two leases. A leader that loses its connection stops leading before it
tries to lock again, so two leaders never overlap for longer than it takes to notice a dead socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg

from daemon import logs

log = logs.get("st_intacct_sync.leader")


def lock_key(role: str, tenant_id: int) -> int:
    """A stable 63-bit advisory lock key for (role, tenant)."""
    return (zlib.crc32(role.encode()) << 31 ^ tenant_id) & 0x7FFF_FFFF_FFFF_FFFF


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
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect(dsn)
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                await asyncio.sleep(retry_every)
            log.info("leadership_acquired", role=role)
            task = asyncio.create_task(work(), name=f"{role}-work")
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=check_every)
                    if not task.done():
                        await conn.fetchval("SELECT 1")  # raises when the session is gone
                task.result()  # the work ended on its own: a bug, or an error it could not handle
                raise RuntimeError(f"{role} stopped unexpectedly")
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("leadership_connection_lost", role=role, error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(min(retry_every, 2.0))
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
