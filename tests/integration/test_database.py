"""Reaching PostgreSQL: a missing database is created on first start; a refused login is an error."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from daemon.store.database import DatabaseUnavailable, wait_for
from tests.plugins.database import ADMIN_DSN, dsn_for


async def test_missing_database_is_created() -> None:
    name = f"sis_new_{uuid.uuid4().hex[:8]}"
    try:
        await wait_for(dsn_for(name), attempts=2)
        conn = await asyncpg.connect(dsn_for(name))
        await conn.close()
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_unreachable_server_gives_up_after_the_attempts() -> None:
    with pytest.raises(DatabaseUnavailable, match="127.0.0.1:9"):
        await wait_for("postgresql://postgres@127.0.0.1:9/x", attempts=1)
