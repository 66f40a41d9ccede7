"""Follows ServiceTitan's export feeds from the activation time.

Projects are read before jobs in each cycle so that most jobs find their parent already tracked.
Each page is stored with the `continueFrom` that follows it in one transaction: a crash between two
pages replays at most one page, and replays are harmless (upserts are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.errors import AdapterError
from adapters.servicetitan import ServiceTitanClient, export_start
from daemon import logs
from daemon.config import Config
from daemon.store import Store
from daemon.sync.health import ConnectionMonitor
from daemon.sync.ingest import Ingestor
from daemon.sync.rejected import RejectedRows

log = logs.get("st_intacct_sync.poller")

FEEDS = ("projects", "jobs")


class Poller:
    """Reads both change feeds every `poll_interval` while automatic synchronization is on."""

    def __init__(
        self,
        store: Store,
        servicetitan: ServiceTitanClient,
        ingestor: Ingestor,
        monitor: ConnectionMonitor,
        config: Callable[[], Config],
        wake: asyncio.Event,
        rejected: RejectedRows | None = None,
    ) -> None:
        self.store = store
        self.st = servicetitan
        self.ingestor = ingestor
        self.monitor = monitor
        self._config = config
        self.wake = wake  # set by reloads and by ServiceTitan recovering
        self.rejected = rejected if rejected is not None else RejectedRows()
        self.last_poll_at: datetime | None = None
        self._last_complete: float | None = None

    @property
    def lag_s(self) -> float | None:
        """Seconds since both feeds were last read to their end."""
        return None if self._last_complete is None else time.monotonic() - self._last_complete

    async def run(self) -> None:
        """Poll forever (cancelled when leadership or the daemon ends)."""
        while True:
            self.wake.clear()  # before polling, so that a reload during the poll is not lost
            started = time.monotonic()
            config = self._config()
            interval = config.servicetitan.poll_interval.total_seconds()
            if config.settings.auto_sync:
                settings = await self.store.tenant_settings()
                activation = settings.activated_at if settings else None
                if activation is not None:
                    ok = await self.poll_once(activation)
                    if not ok:
                        interval = min(interval, config.intacct.probe_interval.total_seconds())
            # Polls start every `interval` (not `interval` after the previous one ended), so that a
            # change waits interval/2 on average however long a poll takes.
            remaining = max(0.0, started + interval - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), remaining)

    async def poll_once(self, activation: datetime) -> bool:
        """Read both feeds to their end; False when ServiceTitan failed us."""
        started = datetime.now(UTC)
        for feed in FEEDS:
            try:
                await self._follow(feed, activation)
            except AdapterError as exc:
                await self.monitor.failed(exc)
                log.warning("poll_failed", feed=feed, error_class=exc.error_class, error=exc.message)
                return False
        await self.monitor.succeeded()
        self.last_poll_at = started
        self._last_complete = time.monotonic()
        return True

    async def _follow(self, feed: str, activation: datetime) -> None:
        config = self._config()
        start = await self.store.get_cursor(feed) or export_start(activation)
        recent = config.servicetitan.include_recent_changes
        pages = (self.st.export_projects(start, include_recent_changes=recent) if feed == "projects"
                 else self.st.export_jobs(start, include_recent_changes=recent))
        rows = enqueued = 0
        async for page in pages:
            # Stored with the page's cursor below: skipped for good, never a reason to stall the feed.
            self.rejected.add(page.rejected)
            cursor = (feed, page.continue_from)
            if feed == "projects":
                report = await self.ingestor.ingest_projects(page.rows, activation=activation, cursor=cursor)  # type: ignore[arg-type]
            else:
                report = await self.ingestor.ingest_jobs(page.rows, activation=activation, cursor=cursor)  # type: ignore[arg-type]
            rows += len(page.rows)
            enqueued += report.result.enqueued
        if rows:
            log.info("feed_read", feed=feed, rows=rows, enqueued=enqueued)
