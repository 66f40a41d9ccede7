"""Fixtures of the end-to-end tests: simulators and daemons as subprocesses, a fresh database each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.harness import Stack


@pytest.fixture
async def stack(tmp_path: Path, database_dsn: str) -> AsyncIterator[Stack]:
    """Both simulators up (credentials enforced); start daemons with `stack.start_daemon(...)`."""
    async with aiohttp.ClientSession() as session:
        s = Stack(tmp_path, database_dsn, session)
        try:
            await s.start_simulators()
            yield s
        finally:
            await s.close()
