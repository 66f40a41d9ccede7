"""Workers: wake on NOTIFY (or a slow poll), claim a batch with a lease, sync it (docs/architecture.md, "Data flow").

Each worker claims at most `max_functions_per_request` records, so one claim is one Intacct request
in the common case; with more workers than `max_concurrent_requests`, the extra workers hold their
next batch ready at the adapter's semaphore, which keeps every allowed request slot busy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from daemon import logs
from daemon.config import Config
from daemon.store import DB_ERRORS, Record, Store
from daemon.sync.engine import SyncEngine
from daemon.sync.health import ConnectionMonitor
from daemon.tasks import wait_first

log = logs.get("st_intacct_sync.workers")

FALLBACK_POLL = 5.0  # seconds between claims when no NOTIFY arrives (lost notifications, other replicas)
# The least an idle worker waits between two claims that found nothing, whatever `next_due` says: a
# record due but not claimable (its job waits for a parent on its way) keeps `next_due` in the past,
# and every worker of every replica would otherwise query the database many times a second.
IDLE_MIN = 1.0


async def _renew(store: Store, engine: SyncEngine, lease: Callable[[], timedelta]) -> None:
    while True:
        await asyncio.sleep(max(0.2, lease().total_seconds() / 3))
        try:
            await store.renew_leases(engine.owner, lease(), engine.working_on())
        except DB_ERRORS as exc:
            log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")


@contextlib.asynccontextmanager
async def leases_renewed(store: Store, engine: SyncEngine, lease: Callable[[], timedelta]) -> AsyncIterator[None]:
    """Renew the engine's claims every third of a lease while the body runs.

    For one-shot commands (`sync`), which have no worker pool: without it, a claim outliving its
    lease (a slow Intacct) is swept by a running daemon and synced twice over.
    """
    task = asyncio.create_task(_renew(store, engine, lease), name="lease-heartbeat")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class WorkerPool:
    """The claim loops plus the lease heartbeat and the expired-lease sweeper."""

    def __init__(
        self,
        store: Store,
        engine: SyncEngine,
        monitor: ConnectionMonitor,
        config: Callable[[], Config],
        dsn: str,
    ) -> None:
        self.store = store
        self.engine = engine
        self.monitor = monitor
        self._config = config
        self.dsn = dsn
        self.wakeup = asyncio.Event()
        self.stopping = asyncio.Event()
        self.in_flight = 0

    def poke(self) -> None:
        """Wake idle workers (new work in this process)."""
        self.wakeup.set()

    async def worker(self, index: int) -> None:
        """One claim loop; returns when the pool is stopping (after finishing its batch)."""
        while not self.stopping.is_set():
            config = self._config()
            if not config.settings.enable_intacct_projects:
                await self._idle(FALLBACK_POLL)
                continue
            if not self.monitor.usable:
                await self._wait_usable()
                continue
            try:
                batch = await self.store.claim_batch(self.engine.owner, await self._claim_size(config),
                                                     config.sync.lease, projects=config.settings.syncs("project"))
            except DB_ERRORS as exc:
                log.warning("claim_failed", worker=index, error=f"{type(exc).__name__}: {exc}")
                await self._idle(1.0)
                continue
            if not batch:
                await self._idle(await self._sleep_for())
                continue
            self.in_flight += 1
            try:
                # Shielded: a shutdown lets the request finish and its results land.
                await asyncio.shield(self._process(batch, index))
            finally:
                self.in_flight -= 1

    async def _process(self, batch: list[Record], index: int) -> None:
        try:
            await self.engine.process(batch)
        except DB_ERRORS as exc:
            # Storing the results failed (the database is restarting). Resending is not safe to do
            # blindly, and not needed: the leases expire, and expired claims are read before any
            # create, so nothing is lost or duplicated.
            log.warning("results_not_stored", worker=index, records=len(batch),
                        error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(1.0)
        except Exception as exc:
            # Released unchanged, the batch would be claimed and crash again for ever: each record
            # fails transiently with its attempt counted, so `max_attempts` ends it. If even that
            # cannot be stored, the leases expire and their claims are read before any create.
            log.exception("sync_batch_crashed", worker=index, records=len(batch))
            with contextlib.suppress(Exception):
                await self.engine.settle_crash(batch, exc)
            await asyncio.sleep(1.0)

    async def _claim_size(self, config: Config) -> int:
        """A full request when work is plentiful; otherwise smaller requests that finish sooner.

        A request's time grows with its functions (Intacct takes ~2 ms each on top of its fixed
        cost), so with 75 records ready and 2 free request slots, three requests of 25 — two at
        once, the third waiting at the semaphore for the first free slot — get two thirds of the
        records into Intacct sooner than two requests of 38, with no slot ever idle.
        """
        most = config.intacct.max_functions_per_request
        free = max(0, config.intacct.max_concurrent_requests - self.in_flight)
        ready = await self.store.count_ready(most * (free + 1))
        return max(1, min(most, -(-ready // (free + 1))))

    async def _sleep_for(self) -> float:
        try:
            due = await self.store.next_due()
        except DB_ERRORS:
            return FALLBACK_POLL
        if due is None:
            return FALLBACK_POLL
        return max(IDLE_MIN, min(FALLBACK_POLL, (due - datetime.now(UTC)).total_seconds()))

    async def _idle(self, seconds: float) -> None:
        self.wakeup.clear()
        await wait_first(self.stopping.wait(), self.wakeup.wait(), timeout=seconds)

    async def _wait_usable(self) -> None:
        await wait_first(self.monitor.wait_usable(), self.stopping.wait())

    async def heartbeat(self) -> None:
        """Renew this process's leases every third of a lease, and sweep dead workers' claims."""
        while True:
            lease = self._config().sync.lease
            await asyncio.sleep(max(0.2, lease.total_seconds() / 3))
            try:
                # Only the claims still being worked on: a batch whose results could not be stored
                # (the database restarted under it) must expire like a dead worker's, and be read
                # before any create, instead of staying `syncing` as long as this process lives.
                await self.store.renew_leases(self.engine.owner, lease, self.engine.working_on())
                expired = await self.store.expire_leases()
                if expired:
                    log.warning("leases_expired", count=expired)
                    self.poke()
                if await self.store.revive_parent_failures():
                    self.poke()
            except DB_ERRORS as exc:
                log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")

    async def listen(self) -> None:
        """LISTEN for enqueue notifications on a connection of its own; reconnect when it drops."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                await conn.add_listener(self.store.channel, lambda *_: self.poke())
                self.poke()  # anything enqueued while we were not listening
                while True:
                    await asyncio.sleep(10)
                    await conn.fetchval("SELECT 1")
            except DB_ERRORS as exc:
                log.warning("listen_connection_lost", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
