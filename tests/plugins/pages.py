"""The queue page's application over the real store (tests/integration/ui_support.py), as a fixture."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from daemon.config import Config
from daemon.http import create_app
from daemon.store import Store
from tests.integration.ui_support import Client, Services, make_config


@pytest.fixture
async def pages(store: Store, aiohttp_client: Client) -> Callable[..., Awaitable[tuple[TestClient, Services]]]:
    async def make(config: Config | None = None) -> tuple[TestClient, Services]:
        services = Services(store, config or make_config())
        client = await aiohttp_client(create_app(services))  # type: ignore[arg-type]
        return client, services

    return make
