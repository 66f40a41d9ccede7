"""Shared plumbing of the benchmarks: a scratch database, both simulators and the daemon as processes.

The benchmarks drive the same subprocess harness as the end-to-end tests (tests/acceptance/harness.py),
so what they measure is the product as an operator runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.acceptance.harness import Stack, wait_until  # noqa: E402

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

__all__ = ["ADMIN_DSN", "Stack", "bench_stack", "percentile", "scratch_database", "wait_until"]


@contextlib.asynccontextmanager
async def scratch_database(admin_dsn: str = ADMIN_DSN) -> AsyncIterator[str]:
    """A new empty database, dropped afterwards."""
    name = f"sis_bench_{uuid.uuid4().hex[:8]}"
    base = admin_dsn.rpartition("/")[0]
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield f"{base}/{name}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@contextlib.asynccontextmanager
async def bench_stack(*, intacct_args: list[str], st_args: list[str] | None = None,
                      admin_dsn: str = ADMIN_DSN, intacct_api: str = "xml") -> AsyncIterator[Stack]:
    """Both simulators running (credentials enforced), a scratch database; daemons via start_daemon
    speaking `intacct_api` (xml or rest) to Intacct."""
    with tempfile.TemporaryDirectory(prefix="sis-bench-") as tmp:
        async with scratch_database(admin_dsn) as dsn, aiohttp.ClientSession() as session:
            stack = Stack(Path(tmp), dsn, session, intacct_api=intacct_api)
            try:
                await stack.start_simulators(intacct_args=intacct_args, st_args=st_args)
                yield stack
            finally:
                await stack.close()


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
