"""What the HTTP endpoints read from the daemon: the protocols the supervisor (and the demo) provide."""

from __future__ import annotations

from typing import Any, Protocol

from daemon import logs
from daemon.config import Config
from daemon.config.sections import HttpConfig
from daemon.metrics import Metrics
from daemon.store import DatabaseHealth, Store
from daemon.sync import ConnectionMonitor, ExportGate


class Reconciler(Protocol):
    """What the HTTP layer needs of the reconciliation service."""

    async def start_run(self, trigger: str) -> int: ...

    async def latest(self) -> dict[str, Any] | None: ...


class Services(Protocol):
    """The daemon's parts the endpoints read from (the supervisor provides them)."""

    metrics: Metrics
    database: DatabaseHealth
    started: float
    owner: str
    listener: HttpConfig  # the address bound at start: authentication follows the socket in use
    redactor: logs.Redactor

    # Read-only: the supervisor reads them from the toolkit it keeps.
    @property
    def store(self) -> Store: ...

    @property
    def gate(self) -> ExportGate: ...

    @property
    def intacct_monitor(self) -> ConnectionMonitor: ...

    @property
    def servicetitan_monitor(self) -> ConnectionMonitor: ...

    @property
    def reconciler(self) -> Reconciler | None: ...

    def config(self) -> Config: ...

    def is_leader(self) -> bool: ...

    def rejected_rows(self) -> list[dict[str, Any]]: ...
