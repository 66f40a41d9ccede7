"""Fixtures of the end-to-end tests: simulators and daemons as subprocesses, a fresh database each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.harness import Stack


@pytest.fixture
def intacct_api(request: pytest.FixtureRequest) -> str:
    """The Intacct API the stack's daemons speak: xml unless a test is parametrized with BOTH_APIS."""
    return str(getattr(request, "param", "xml"))


@pytest.fixture
async def stack(tmp_path: Path, database_dsn: str, intacct_api: str) -> AsyncIterator[Stack]:
    """Both simulators up (credentials enforced); start daemons with `stack.start_daemon(...)`."""
    async with aiohttp.ClientSession() as session:
        s = Stack(tmp_path, database_dsn, session, intacct_api=intacct_api)
        try:
            await s.start_simulators()
            yield s
        finally:
            await s.close()
