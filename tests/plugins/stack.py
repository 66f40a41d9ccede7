"""The acceptance harness for every suite that runs the daemon as a subprocess (acceptance, resilience,
operations, security, browser): both simulators up, credentials enforced, a fresh database each."""

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
def intacct_api(request: pytest.FixtureRequest) -> str:
    """The Intacct API the stack's daemons speak: xml unless a test is parametrized with BOTH_APIS."""
    return str(getattr(request, "param", "xml"))


@pytest.fixture
async def stack(tmp_path: Path, database_dsn: str, intacct_api: str,
                session: aiohttp.ClientSession) -> AsyncIterator[Stack]:
    """Both simulators up; start daemons with `stack.start_daemon(...)`, stopped at the end."""
    s = Stack(tmp_path, database_dsn, session, intacct_api=intacct_api)
    try:
        await s.start_simulators()
        yield s
    finally:
        await s.close()
