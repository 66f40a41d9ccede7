"""Fixtures of the operator-procedure tests: the acceptance harness (simulators and daemons as subprocesses)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.harness import Stack


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


@pytest.fixture
async def stack(tmp_path: Path, database_dsn: str, session: aiohttp.ClientSession) -> AsyncIterator[Stack]:
    """Both simulators up (credentials enforced) against a fresh database; daemons stopped at the end."""
    s = Stack(tmp_path, database_dsn, session)
    try:
        await s.start_simulators()
        yield s
    finally:
        await s.close()
