"""Fixtures of the security suite: the acceptance harness (simulators and daemons as subprocesses)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.harness import Stack


@pytest.fixture
async def stack(tmp_path: Path, database_dsn: str) -> AsyncIterator[Stack]:
    """Both simulators up (credentials enforced) against a fresh database; daemons stopped at the end."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        s = Stack(tmp_path, database_dsn, session)
        try:
            await s.start_simulators()
            yield s
        finally:
            await s.close()
