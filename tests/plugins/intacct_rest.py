"""The Intacct simulator seen through its REST API, and a REST client against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from adapters.intacct_rest import IntacctRestClient, RestCredentials
from simulators.intacct import STATE, IntacctSimOptions, SimState, create_app
from simulators.intacct.rest_api import API_PREFIX, REST_STATE
from simulators.intacct.rest_options import RestOptions
from simulators.intacct.rest_state import RestState


@dataclass
class RestSim:
    """A running simulator (both APIs, one company) with helpers for its REST side."""

    server: TestServer
    state: SimState
    rest: RestState

    @property
    def base_url(self) -> str:
        """The REST API base (``…/ia/api/v1``)."""
        return str(self.server.make_url(API_PREFIX))

    def url(self, path: str) -> str:
        """Any URL of this simulator."""
        return str(self.server.make_url(path))

    def credentials(self, **changes: Any) -> RestCredentials:
        """Client credentials the simulator accepts."""
        o = self.rest.options
        values: dict[str, Any] = {"base_url": self.base_url, "client_id": o.client_id or "client-id",
                                  "client_secret": o.client_secret or "client-secret",
                                  "username": o.username or "wsuser@company"}
        values.update(changes)
        return RestCredentials(**values)

    def set_faults(self, **changes: Any) -> None:
        """Change the company's faults (shared with the XML gateway)."""
        self.state.faults = self.state.faults.changed(changes)

    def set_options(self, **changes: Any) -> None:
        """Change REST options, as ``PUT /_sim/rest/options`` would."""
        self.rest.options = self.rest.options.changed(changes)

    def projects(self) -> dict[str, dict[str, str | int | None]]:
        """Every project by PROJECTID."""
        return {p.project_id: p.as_dict() for p in self.state.projects}


RestSimFactory = Callable[..., Awaitable[RestSim]]


@pytest.fixture
def make_rest_sim(aiohttp_server: AiohttpServer) -> RestSimFactory:
    """Start a simulator with the given options."""

    async def make(options: IntacctSimOptions | None = None, rest_options: RestOptions | None = None) -> RestSim:
        app = create_app(options or IntacctSimOptions(seed_customers=("C1", "C2")), rest_options=rest_options)
        server = await aiohttp_server(app, host="127.0.0.1")
        return RestSim(server, app[STATE], app[REST_STATE])

    return make


@pytest.fixture
async def rest_sim(make_rest_sim: RestSimFactory) -> RestSim:
    """A simulator that knows customers C1 and C2 and accepts any client credentials."""
    return await make_rest_sim()


@pytest.fixture
async def rest_http() -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP session a REST client is given."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def rest_client(rest_sim: RestSim, rest_http: aiohttp.ClientSession) -> IntacctRestClient:
    """A REST client against ``rest_sim`` (2 requests at most, 5 s timeout)."""
    return IntacctRestClient(rest_http, rest_sim.credentials(), max_concurrent_requests=2, request_timeout=5.0)
