"""The Intacct connection the daemon holds: the client of the configured API (`intacct.api`) behind
the one port, so that nothing above the adapters knows which API is in use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import aiohttp

from adapters.intacct import Function, FunctionResult, IntacctClient, IntacctProject
from adapters.intacct.models import MAX_PAGE_SIZE
from adapters.intacct_rest import IntacctRestClient
from adapters.port import IntacctPort
from daemon.config import Config, intacct_credentials, intacct_rest_credentials


class IntacctConnection:
    """The Intacct port the daemon holds: the client of the configured API, replaced when a reload
    switches `intacct.api` (requests already sent finish on the old client; nothing is lost, and the
    engine's read-before-resend covers a create whose answer the switch cut off)."""

    def __init__(self, http: aiohttp.ClientSession, config: Config,
                 observer: Callable[[str, float], None] | None = None) -> None:
        self._http = http
        self._observer = observer
        self.api = config.intacct.api
        self.client: IntacctClient | IntacctRestClient = self._build(config)

    def _build(self, config: Config) -> IntacctClient | IntacctRestClient:
        ia = config.intacct
        slots, timeout = ia.max_concurrent_requests, ia.request_timeout.total_seconds()
        wait_max = config.sync.backoff_max.total_seconds()  # a Retry-After never parks a record longer
        if ia.api == "rest":
            return IntacctRestClient(self._http, intacct_rest_credentials(config), max_concurrent_requests=slots,
                                     request_timeout=timeout, observer=self._observer, retry_after_max=wait_max)
        return IntacctClient(self._http, intacct_credentials(config), max_concurrent_requests=slots,
                             request_timeout=timeout, observer=self._observer, retry_after_max=wait_max,
                             session_max_age=ia.session_max_age.total_seconds())

    def reconfigure(self, config: Config) -> None:
        """Take new settings: other credentials, or the other API."""
        if config.intacct.api != self.api:
            self.api = config.intacct.api
            self.client = self._build(config)
        elif isinstance(self.client, IntacctRestClient):
            self.client.update_credentials(intacct_rest_credentials(config))
        else:
            self.client.update_credentials(intacct_credentials(config))

    def tune(self, config: Config) -> None:
        """Take the settings a reload may change without reconnecting."""
        if isinstance(self.client, IntacctClient):
            self.client.session_max_age = config.intacct.session_max_age.total_seconds()
            self.client.retry_after_max = config.sync.backoff_max.total_seconds()

    async def execute(self, functions: Sequence[Function], *, priority: bool = False) -> list[FunctionResult]:
        """See `adapters.port.IntacctPort`."""
        return await self.client.execute(functions, priority=priority)

    async def read_projects(self, project_ids: Sequence[str], *, priority: bool = False) -> dict[str, IntacctProject]:
        """See `adapters.port.IntacctPort`."""
        return await self.client.read_projects(project_ids, priority=priority)

    async def iter_projects(self, patterns: Sequence[str],
                            page_size: int = MAX_PAGE_SIZE) -> AsyncIterator[list[IntacctProject]]:
        """See `adapters.port.IntacctPort`."""
        async for page in self.client.iter_projects(patterns, page_size):
            yield page

    async def probe(self) -> None:
        """See `adapters.port.IntacctPort`."""
        await self.client.probe()


def _implement_the_port(xml: IntacctClient, rest: IntacctRestClient, c: IntacctConnection) -> list[IntacctPort]:
    """Never called: mypy checks here that both clients, and the connection, implement the port."""
    return [xml, rest, c]
