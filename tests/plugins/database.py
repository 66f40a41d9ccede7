"""PostgreSQL for tests: the real server, a fresh database per test cloned from a migrated template.

`ST_INTACCT_SYNC_TEST_DSN` points at a maintenance database of a server where the tests may create
and drop databases (default: the local server of the CI machine, trust auth).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from daemon.store.migrations import migrate
from daemon.store.store import Store

ADMIN_DSN = os.environ.get("ST_INTACCT_SYNC_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TENANT_ID = 1234567


def dsn_for(database: str) -> str:
    """The admin DSN with another database name."""
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_template(name: str) -> None:
    await _admin(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(dsn_for(name))
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A database with every migration applied, cloned by each test."""
    name = f"sis_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_create_template(name))
    yield name
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_dsn(template_database: str) -> AsyncIterator[str]:
    """The DSN of a fresh, migrated database of this test's own."""
    name = f"sis_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield dsn_for(name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_database_dsn() -> AsyncIterator[str]:
    """The DSN of a fresh database with no schema at all."""
    name = f"sis_e_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    yield dsn_for(name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_dsn, min_size=1, max_size=8) as p:
        yield p


@pytest.fixture
async def store(pool: asyncpg.Pool) -> Store:
    return Store(pool, TENANT_ID)
