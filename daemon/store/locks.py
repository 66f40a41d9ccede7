"""PostgreSQL advisory locks: the leader's, the reconciliation's and the migrations'.

A session lock lives as long as its connection: whoever holds one keeps a connection of its own for
it, so a process that dies (or whose session the server ends) lets go at once.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import asyncpg

from daemon.store.queries import queries

Q = queries()
if TYPE_CHECKING:  # the proxy is generic only in the stubs
    # A connection of its own, or one borrowed from the pool for a transaction.
    Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]


def lock_key(role: str, tenant_id: int) -> int:
    """A stable 63-bit advisory lock key for (role, tenant)."""
    return (zlib.crc32(role.encode()) << 31 ^ tenant_id) & 0x7FFF_FFFF_FFFF_FFFF


async def try_lock(conn: Connection, key: int, *, timeout: float | None = None) -> bool:
    """Take the session lock `key` if it is free; whether this session now holds it."""
    return bool(await conn.fetchval(Q["try_advisory_lock"], key, timeout=timeout))


async def lock(conn: Connection, key: int) -> None:
    """Wait, without a time limit, until the session lock `key` is ours."""
    await conn.fetchval(Q["advisory_lock"], key, timeout=None)


async def unlock(conn: Connection, key: int) -> None:
    await conn.fetchval(Q["advisory_unlock"], key)


async def lock_transaction(conn: Connection, key: int) -> None:
    """Wait for the lock `key`, held until the current transaction ends."""
    await conn.execute(Q["advisory_xact_lock"], key)
