"""What the pages need of the daemon: the supervisor provides it (typing.Protocol, checked by mypy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from daemon.config import Config
from daemon.config.sections import HttpConfig
from daemon.store import RecordKey, Store
from daemon.sync import ConnectionMonitor
from daemon.sync.gate import EnsureOutcome


class Gate(Protocol):
    async def ensure(self, keys: Sequence[RecordKey], timeout: float) -> EnsureOutcome: ...


class Reconciler(Protocol):
    async def start_run(self, trigger: str) -> int: ...


class Redactor(Protocol):
    def redact(self, text: str) -> str: ...


class PageServices(Protocol):
    """The daemon's parts the pages read from and act through."""

    # Read-only properties: the supervisor's plain attributes of the concrete types satisfy them.
    @property
    def store(self) -> Store: ...

    @property
    def gate(self) -> Gate: ...

    @property
    def intacct_monitor(self) -> ConnectionMonitor: ...

    @property
    def servicetitan_monitor(self) -> ConnectionMonitor: ...

    @property
    def redactor(self) -> Redactor: ...

    @property
    def listener(self) -> HttpConfig: ...  # the address bound at start: who may view follows the socket

    @property
    def reconciler(self) -> Reconciler | None: ...

    def config(self) -> Config: ...
