"""The wired-up parts shared by the daemon and the one-shot commands (`sync`, `backfill`, `reconcile`).

One `async with open_toolkit(config)` opens the database pool (migrated), both HTTP client sessions
and the adapters, and wires the store, the sync engine and export gating; leaving it closes them in
reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import asyncpg

from adapters.servicetitan import ServiceTitanClient
from daemon import logs
from daemon.config import Config, servicetitan_credentials
from daemon.metrics import Metrics
from daemon.store import Store, migrate, open_database
from daemon.sync import ConnectionMonitor, ExportGate, Ingestor, IntacctConnection, StateWaiters, SyncEngine
from statemachine import RetryPolicy

log = logs.get("st_intacct_sync.toolkit")


def new_owner(role: str = "daemon") -> str:
    """A lease owner id unique to this process: host, pid and a random suffix."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Toolkit:
    """Everything needed to read ServiceTitan, write Intacct and keep the records."""

    config: Callable[[], Config]
    dsn: str
    pool: asyncpg.Pool
    store: Store
    servicetitan: ServiceTitanClient
    intacct: IntacctConnection
    intacct_monitor: ConnectionMonitor
    servicetitan_monitor: ConnectionMonitor
    ingestor: Ingestor
    engine: SyncEngine
    gate: ExportGate
    waiters: StateWaiters
    metrics: Metrics


@contextlib.asynccontextmanager
async def open_store(cfg: Config, *, stop: asyncio.Event | None = None, pool_size: int,
                     patient: bool = True, redactor: logs.Redactor | None = None
                     ) -> AsyncIterator[tuple[str, Store]]:
    """The database alone (answering, migrated) and the tenant's store: all a command that neither
    reads ServiceTitan nor writes Intacct needs (`retry`), so it needs none of their secrets."""
    async with open_database(cfg, stop, patient=patient) as dsn, asyncpg.create_pool(
            dsn, min_size=1, max_size=pool_size, command_timeout=60,
            timeout=cfg.database.connect_timeout.total_seconds()) as pool:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("migrations_applied", versions=[m.version for m in applied])
        yield dsn, Store(pool, cfg.servicetitan.tenant_id, redact=(redactor or logs.Redactor(cfg.secrets())).walk)


@contextlib.asynccontextmanager
async def open_toolkit(
    config: Callable[[], Config],
    *,
    owner: str,
    stop: asyncio.Event | None = None,
    metrics: Metrics | None = None,
    pool_size: int | None = None,
    redactor: logs.Redactor | None = None,
    patient: bool = True,
) -> AsyncIterator[Toolkit]:
    """Open and wire everything; `config` is called whenever the current settings are needed.

    `patient`: wait for the database as long as it takes (the daemon); a command is not, and gives
    up after `database.connect_timeout`.
    """
    cfg = config()
    metrics = metrics or Metrics()
    async with contextlib.AsyncExitStack() as stack:
        dsn, store = await stack.enter_async_context(
            open_store(cfg, stop=stop, pool_size=pool_size or cfg.sync.workers + 8, patient=patient,
                       redactor=redactor))
        pool = store.pool
        waiters = StateWaiters()
        store.on_transitions(metrics.on_transitions)
        store.on_transitions(waiters.on_transitions)
        st_session = await stack.enter_async_context(aiohttp.ClientSession())
        ia_session = await stack.enter_async_context(aiohttp.ClientSession())
        servicetitan = ServiceTitanClient(
            st_session, servicetitan_credentials(cfg), observer=metrics.observe_servicetitan,
            # No upstream's Retry-After parks a call longer than the daemon's own longest backoff.
            retry_after_max=cfg.sync.backoff_max.total_seconds(),
        )
        intacct = IntacctConnection(ia_session, cfg, observer=metrics.observe_intacct)
        intacct_monitor = ConnectionMonitor("intacct")
        servicetitan_monitor = ConnectionMonitor("servicetitan")

        def policy() -> RetryPolicy:
            sync = config().sync
            return RetryPolicy(sync.max_attempts, sync.backoff_initial, sync.backoff_max)

        def template_of(kind: str) -> str:
            mapping = config().mapping
            return mapping.job_project_id if kind == "job" else mapping.project_project_id

        engine = SyncEngine(store, intacct, intacct_monitor, owner=owner, policy=policy,
                            max_functions=lambda: config().intacct.max_functions_per_request,
                            template_of=template_of)
        ingestor = Ingestor(store, servicetitan, config)
        gate = ExportGate(store, ingestor, engine, intacct_monitor, servicetitan_monitor, waiters, config)
        yield Toolkit(config, dsn, pool, store, servicetitan, intacct, intacct_monitor, servicetitan_monitor,
                      ingestor, engine, gate, waiters, metrics)
