"""Simulator fixtures: both simulators on loopback, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

import simulators.servicetitan as st_sim
from adapters.intacct import IntacctClient, IntacctCredentials
from adapters.servicetitan import ServiceTitanClient, ServiceTitanCredentials
from simulators.intacct import GATEWAY_PATH, STATE, IntacctSimOptions, SimState, create_app

# --- Sage Intacct -------------------------------------------------------------------------------


@dataclass
class IntacctSim:
    """A running Intacct simulator: its gateway URL, its in-memory company and a few helpers."""

    server: TestServer
    state: SimState

    @property
    def url(self) -> str:
        """The gateway URL (also the session endpoint it announces)."""
        return str(self.server.make_url(GATEWAY_PATH))

    def control_url(self, path: str) -> str:
        """A ``/_sim/...`` URL of this simulator."""
        return str(self.server.make_url(path))

    def credentials(self, **changes: Any) -> IntacctCredentials:
        """Credentials the simulator accepts (its enforced ones, else sample values), with ``changes``."""
        c = self.state.credentials
        credentials = IntacctCredentials(
            endpoint_url=self.url,
            sender_id=c.sender_id or "sender",
            sender_password=c.sender_password or "sender-secret",
            company_id=c.company_id or "company",
            user_id=c.user_id or "user",
            user_password=c.user_password or "user-secret",
        )
        return replace(credentials, **changes)

    def set_faults(self, **changes: Any) -> None:
        """Change faults as ``PUT /_sim/faults`` would."""
        self.state.faults = self.state.faults.changed(changes)

    def add_customers(self, *customer_ids: str) -> None:
        """Create customers (their NAME is their id)."""
        for customer_id in customer_ids:
            self.state.customers[customer_id] = customer_id

    def projects(self) -> dict[str, dict[str, str | int | None]]:
        """Every project by PROJECTID, as ``GET /_sim/projects`` lists them."""
        return {p.project_id: p.as_dict() for p in self.state.projects}


IntacctSimFactory = Callable[..., Awaitable[IntacctSim]]


@pytest.fixture
def make_intacct_sim(aiohttp_server: AiohttpServer) -> IntacctSimFactory:
    """Start an Intacct simulator with the given options (or sharing ``state`` with another)."""

    async def make(options: IntacctSimOptions | None = None, *, state: SimState | None = None) -> IntacctSim:
        app = create_app(options, state=state)
        server = await aiohttp_server(app, host="127.0.0.1")
        return IntacctSim(server, app[STATE])

    return make


@pytest.fixture
async def intacct_sim(make_intacct_sim: IntacctSimFactory) -> AsyncIterator[IntacctSim]:
    """An Intacct simulator on loopback that knows customers C1 and C2 and accepts any credentials."""
    yield await make_intacct_sim(IntacctSimOptions(seed_customers=("C1", "C2")))


@pytest.fixture
async def intacct_http() -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP session an IntacctClient is given."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def intacct_client(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> IntacctClient:
    """An IntacctClient against ``intacct_sim`` (2 requests at most, 5 s timeout)."""
    return IntacctClient(intacct_http, intacct_sim.credentials(), max_concurrent_requests=2, request_timeout=5.0)


# --- ServiceTitan -------------------------------------------------------------------------------

ST_TENANT = 1234567


@dataclass
class ServiceTitanSim:
    """A running ServiceTitan simulator: its URLs, its in-memory state and helpers over the state."""

    server: TestServer
    state: st_sim.SimState
    tenant_id: int = ST_TENANT

    @property
    def base_url(self) -> str:
        """The API base URL (``{base_url}/jpm/v2/tenant/{t}/...``)."""
        return str(self.server.make_url("/")).rstrip("/")

    @property
    def auth_url(self) -> str:
        """The token endpoint."""
        return str(self.server.make_url("/connect/token"))

    def control_url(self, path: str) -> str:
        """A ``/_sim/...`` URL of this simulator."""
        return str(self.server.make_url(path))

    def credentials(self, **changes: Any) -> ServiceTitanCredentials:
        """Credentials the simulator accepts (its enforced ones, else sample values), with ``changes``."""
        c = self.state.credentials
        credentials = ServiceTitanCredentials(
            api_base_url=self.base_url,
            auth_url=self.auth_url,
            tenant_id=self.tenant_id,
            app_key=c.app_key or "ak1.sample-app-key",
            client_id=c.client_id or "cid.sample-client",
            client_secret=c.client_secret or "cs1.sample-secret",
        )
        return replace(credentials, **changes)

    def tenant(self, tenant_id: int | None = None) -> st_sim.TenantData:
        """The data of a tenant (the default one unless named)."""
        return self.state.tenant(self.tenant_id if tenant_id is None else tenant_id)

    def create_customer(self, **fields: Any) -> Any:
        """Create a customer (fields as the control API takes them, camelCase)."""
        return self.tenant().create_customer(fields)

    def create_project(self, **fields: Any) -> Any:
        """Create a project; logs a change in the projects export."""
        return self.tenant().create_project(fields)

    def create_job(self, **fields: Any) -> Any:
        """Create a job; logs a change in the jobs export."""
        return self.tenant().create_job(fields)

    def update_project(self, project_id: int, **fields: Any) -> Any:
        """Rename, re-status or (de)activate a project."""
        return self.tenant().update_project(project_id, fields)

    def update_job(self, job_id: int, **fields: Any) -> Any:
        """Move (``projectId``) or (de)activate a job."""
        return self.tenant().update_job(job_id, fields)

    def set_faults(self, **changes: Any) -> None:
        """Change faults as ``PUT /_sim/faults`` would."""
        self.state.set_faults(changes)

    def clear_faults(self) -> None:
        """Back to no faults."""
        self.state.reset_faults()

    def expire_tokens(self) -> None:
        """Make every issued token invalid (the next API call gets 401)."""
        self.state.expire_tokens()

    @property
    def stats(self) -> st_sim.Stats:
        """The simulator's counters."""
        return self.state.stats


ServiceTitanSimFactory = Callable[..., Awaitable[ServiceTitanSim]]


@pytest.fixture
def make_servicetitan_sim(aiohttp_server: AiohttpServer) -> ServiceTitanSimFactory:
    """Start a ServiceTitan simulator on loopback with the given options."""

    async def make(options: st_sim.ServiceTitanSimOptions | None = None) -> ServiceTitanSim:
        app = st_sim.create_app(options)
        server = await aiohttp_server(app, host="127.0.0.1")
        return ServiceTitanSim(server, app[st_sim.STATE])

    return make


@pytest.fixture
async def servicetitan_sim(make_servicetitan_sim: ServiceTitanSimFactory) -> AsyncIterator[ServiceTitanSim]:
    """A ServiceTitan simulator on loopback, empty, accepting any non-empty credentials."""
    yield await make_servicetitan_sim()


@pytest.fixture
async def servicetitan_http() -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP session a ServiceTitanClient is given."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def servicetitan_client(
    servicetitan_sim: ServiceTitanSim, servicetitan_http: aiohttp.ClientSession
) -> ServiceTitanClient:
    """A ServiceTitanClient against ``servicetitan_sim`` with short timeouts and backoffs for tests."""
    return ServiceTitanClient(
        servicetitan_http,
        servicetitan_sim.credentials(),
        request_timeout=5.0,
        backoff_initial=0.01,
        backoff_max=0.05,
    )
