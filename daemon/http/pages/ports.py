"""What the pages need of the daemon: the supervisor provides it (typing.Protocol, checked by mypy)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from daemon.config import Config
from daemon.config.sections import HttpConfig
from daemon.store import Finding, RunRecord
from daemon.store.rows import HistoryEntry, Record, RecordKey, TenantSettingsState
from daemon.sync import ConnectionMonitor
from daemon.sync.gate import EnsureOutcome


class PageStore(Protocol):
    """The store's reads and the two writes (retry, priority) the pages make."""

    tenant_id: int

    async def counts(self) -> dict[str, int]: ...

    async def oldest_pending(self) -> datetime | None: ...

    async def tenant_settings(self) -> TenantSettingsState | None: ...

    async def latest_reconcile_run(self) -> RunRecord | None: ...

    async def outcomes_per_hour(self, since: datetime) -> dict[tuple[datetime, str], int]: ...

    async def queue_page(self, *, state: str | None, kind: str | None, search: str | None,
                         after: tuple[datetime, str, int] | None, limit: int) -> list[Record]: ...

    async def get(self, key: RecordKey) -> Record | None: ...

    async def history(self, key: RecordKey, limit: int = 100) -> list[HistoryEntry]: ...

    async def retry_failed(self, keys: Sequence[RecordKey] = (), *, all_failed: bool = False, priority: int = 0,
                           reason: str = "operator retry") -> list[RecordKey]: ...

    async def reconcile_runs(self, *, before: int | None, limit: int) -> list[RunRecord]: ...

    async def reconcile_run(self, run_id: int) -> RunRecord | None: ...

    async def reconcile_exceptions(self, run_id: int, limit: int) -> list[Finding]: ...

    async def run_exceptions_page(self, run_id: int, *, after: int, limit: int) -> list[tuple[int, Finding]]: ...


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
    def store(self) -> PageStore: ...

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
