"""The composition root of `st-intacct-sync run`: every resource and task, signals, reload, shutdown.

One `AsyncExitStack` owns the database pool, both HTTP client sessions and the status server, so they
close in reverse order however the run ends. Signal handlers only set events; the run loop acts on
them. A graceful stop lets in-flight Intacct requests finish and their results land (bounded by a
drain timeout), gives back every remaining lease, and only then closes the resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon import logs
from daemon.config import Config, ConfigError, intacct_settings, load_config, restart_needed, servicetitan_credentials
from daemon.config.sections import token_problem
from daemon.exits import EXIT_FAILED, EXIT_OK
from daemon.http import create_app
from daemon.http.server import LimitedSite
from daemon.http.server import runner as http_runner
from daemon.leader import lead
from daemon.metrics import Metrics
from daemon.reconcile import ReconcileService
from daemon.sdnotify import Notifier
from daemon.store import DB_ERRORS, DatabaseHealth, RecordError, Store, Transition, iso, lock_key
from daemon.sync import ERROR, OK, ConnectionMonitor, ExportGate, Poller, WorkerPool
from daemon.sync.rejected import RejectedRows
from daemon.tasks import TaskSet, wait_first
from daemon.wiring import Toolkit, new_owner, open_toolkit
from statemachine import State
from statemachine.desired import derivation_key

log = logs.get("st_intacct_sync.supervisor")

HISTORY_KEEP_DAYS = 90  # transitions older than this are dropped; a record's state and last error stay
HOUSEKEEPING_EVERY_S = 3600.0
DATABASE_CHECK_EVERY_S = 5.0  # how soon /status, /metrics and systemd's STATUS= see the database go or come back


class StartupError(Exception):
    """The daemon cannot start for a reason the operator must fix (the message says which)."""


class Daemon:
    """Everything `run` starts, and the services the HTTP endpoints read."""

    def __init__(self, config: Config, *, config_path: Path | None, notifier: Notifier | None = None,
                 redactor: logs.Redactor | None = None) -> None:
        self._config = config
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.redactor = redactor or logs.Redactor(config.secrets())
        # The HTTP address is bound once: a reload cannot move it, so it (not the file) decides who may call.
        self.listener = config.http
        self.owner = new_owner()
        self.started = time.monotonic()
        self.metrics = Metrics()
        self.database = DatabaseHealth()
        self.tasks = TaskSet()
        self.stop_requested = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self.reconciler: ReconcileService | None = None
        self._leader = False
        self._kit: Toolkit | None = None

    @property
    def kit(self) -> Toolkit:
        """The wired-up parts (database, adapters, engine, gate): kept whole, not copied apart."""
        if self._kit is None:
            raise RuntimeError("the daemon has not started")
        return self._kit

    @property
    def dsn(self) -> str:
        """The database's DSN once it is up (the demo shows it), empty before."""
        return self._kit.dsn if self._kit is not None else ""

    # ---- the Services protocol of daemon.http ----------------------------------------------------

    def config(self) -> Config:
        return self._config

    @property
    def store(self) -> Store:
        return self.kit.store

    @property
    def gate(self) -> ExportGate:
        return self.kit.gate

    @property
    def intacct_monitor(self) -> ConnectionMonitor:
        return self.kit.intacct_monitor

    @property
    def servicetitan_monitor(self) -> ConnectionMonitor:
        return self.kit.servicetitan_monitor

    def is_leader(self) -> bool:
        return self._leader

    def rejected_rows(self) -> list[dict[str, Any]]:
        """The last ServiceTitan rows this process's poller skipped (the leader's; none elsewhere)."""
        poller = getattr(self, "poller", None)
        return poller.rejected.recent() if poller is not None else []

    # ---- run -------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or until a task dies (exit 1)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_requested.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_requested.set)
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._start(stack)
                code = await self._serve()
                await self._drain()
            log.info("stopped", exit_code=code)
            return code
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        config = self._config
        self.notifier.status("connecting to the database")
        kit = await stack.enter_async_context(
            open_toolkit(self.config, owner=self.owner, stop=self.stop_requested, metrics=self.metrics,
                         redactor=self.redactor)
        )
        self._kit = kit
        self.store.on_transitions(self._log_transitions)
        await self.database.succeeded()
        await self._apply_auto_sync(config)
        # Before any worker claims: settings or templates edited while the daemon was stopped.
        await self._rederive(config)
        self.intacct_monitor.on_change(self._intacct_changed)
        # systemd's STATUS= line follows every change of every connection.
        self.servicetitan_monitor.on_change(self._servicetitan_changed)
        self.database.on_change(self._database_changed)
        self.workers = WorkerPool(kit.store, kit.engine, kit.intacct_monitor, self.config, kit.dsn)
        # Work enqueued in this process wakes the workers at once, without the NOTIFY round trip.
        self.store.on_transitions(
            lambda ts: self.workers.poke() if any(t.to_state == State.PENDING for t in ts) else None
        )
        self.poller_wake = asyncio.Event()
        self.poller = Poller(kit.store, kit.servicetitan, kit.ingestor, kit.servicetitan_monitor, self.config,
                             self.poller_wake, RejectedRows(self.metrics.count_rejected_row))
        reconciler = ReconcileService.from_toolkit(kit, redactor=self.redactor, tasks=self.tasks)
        stack.push_async_callback(reconciler.aclose)  # after the HTTP server closes: cancels its runs
        self.reconciler = reconciler
        self.notifier.status("checking the ServiceTitan and Intacct connections")
        await self._first_probe()

        runner = http_runner(create_app(self))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = LimitedSite(runner, self.listener.host, self.listener.port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {config.http.listen} (http.listen): {exc.strerror or exc}") from None
        log.info("http_listening", listen=self.listener.listen)

        for i in range(config.sync.workers):
            self.tasks.spawn(f"worker-{i}", self.workers.worker(i))
        self.tasks.spawn("heartbeat", self.workers.heartbeat())
        self.tasks.spawn("listen", self.workers.listen())
        self.tasks.spawn("intacct-probe", self._probe_loop())
        self.tasks.spawn("database-check", self._database_loop())
        every = self._leader_retry()
        self.tasks.spawn("leader", lead(kit.dsn, lock_key("leader", config.servicetitan.tenant_id), "leader",
                                        self._lead, retry_every=every, check_every=every))
        self.tasks.spawn("reload", self._reload_loop())
        if self.notifier.watchdog_interval:
            self.tasks.spawn("watchdog", self._watchdog())
        self.notifier.ready(self._status_line())
        log.info("started", owner=self.owner, tenant=config.servicetitan.tenant_id, workers=config.sync.workers,
                 intacct=self.intacct_monitor.state, servicetitan=self.servicetitan_monitor.state)

    def _leader_retry(self) -> float:
        # Followers try often enough that one takes over well within two leases of the leader's death,
        # and the leader checks its lock's session as often, so that a leader whose session the server
        # ended (and whose lock another replica may already hold) steps down just as fast.
        return max(0.5, min(5.0, self._config.sync.lease.total_seconds() / 4))

    async def _serve(self) -> int:
        await wait_first(self.stop_requested.wait(), self.tasks.failed.wait())
        if self.tasks.failed.is_set():
            log.error("stopping_after_failure", reason=self.tasks.failure)
            return EXIT_FAILED
        log.info("stopping", reason="signal")
        return EXIT_OK

    async def _drain(self) -> None:
        self.notifier.stopping()
        config = self._config
        await self.tasks.stop("leader", "intacct-probe", "database-check", "reload", "watchdog", "listen")
        self.workers.stopping.set()
        drain = min(config.intacct.request_timeout.total_seconds() + 5, 90.0)
        await self.tasks.stop(*self.tasks.names("worker-"), timeout=drain)
        with contextlib.suppress(*DB_ERRORS):
            released = await self.store.release_owner(self.owner)
            if released:
                log.info("leases_released", count=released)
        await self.tasks.stop_all()

    # ---- leadership: poller and reconciliation scheduler -----------------------------------------

    async def _lead(self) -> None:
        self._leader = True
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.poller.run(), name="poller")
                group.create_task(self._housekeeping(), name="housekeeping")
                if self.reconciler is not None:
                    group.create_task(self.reconciler.schedule(), name="reconcile-scheduler")
        finally:
            self._leader = False

    async def _housekeeping(self) -> None:
        """Keep the transition history from growing without end (the leader does it for all)."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY_S)
            pruned = await self.store.prune_history(HISTORY_KEEP_DAYS)
            if pruned:
                log.info("history_pruned", rows=pruned, older_than_days=HISTORY_KEEP_DAYS)

    # ---- connection state ------------------------------------------------------------------------

    async def _first_probe(self) -> None:
        await asyncio.gather(self.servicetitan_monitor.first_probe(self.kit.servicetitan.probe),
                             self.intacct_monitor.first_probe(self.kit.intacct.probe))

    async def _servicetitan_changed(self, state: str, error: RecordError | None) -> None:
        self._connection_logged("servicetitan", state, error)

    async def _database_changed(self, state: str, error: RecordError | None) -> None:
        self._connection_logged("database", state, error)

    def _connection_logged(self, system: str, state: str, error: RecordError | None) -> None:
        if state == ERROR:
            log.warning("connection_state", system=system, state=state, error=error.text() if error else None)
        else:
            log.info("connection_state", system=system, state=state)
        self.notifier.status(self._status_line())

    async def _database_loop(self) -> None:
        while True:
            await asyncio.sleep(DATABASE_CHECK_EVERY_S)
            await self.database.check(self.kit.pool)

    async def _intacct_changed(self, state: str, error: RecordError | None) -> None:
        self._connection_logged("intacct", state, error)
        try:
            if state == ERROR:
                await self.store.block_pending(error or self.intacct_monitor.blocking_error, "connection error")
            elif state == OK:
                await self._resume_blocked()
        except DB_ERRORS as exc:
            # The probe loop sweeps again every probe_interval: nothing stays blocked for good.
            log.warning("connection_state_not_stored", error=f"{type(exc).__name__}: {exc}")

    async def _resume_blocked(self) -> None:
        n = await self.store.unblock_all()
        if n:
            log.info("blocked_records_resumed", count=n)
        self.workers.poke()

    async def _probe_loop(self) -> None:
        """Every probe_interval (at once after a reload): while Intacct is in error, probe it; while it
        is fine, resume any record still blocked (one blocked by a request racing the recovery, or
        whose unblocking a database hiccup interrupted)."""
        while True:
            interval = self._config.intacct.probe_interval.total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.intacct_monitor.probe_now.wait(), interval)
            self.intacct_monitor.probe_now.clear()
            try:
                if self.intacct_monitor.state != ERROR:
                    if (await self.store.counts())[State.BLOCKED.value]:
                        await self._resume_blocked()
                    continue
                try:
                    await self.kit.intacct.probe()
                except Exception as exc:
                    await self.intacct_monitor.failed(exc)
                    # New records that arrived meanwhile wait with the others.
                    await self.store.block_pending(self.intacct_monitor.blocking_error, "connection error")
                else:
                    await self.intacct_monitor.succeeded()
            except DB_ERRORS as exc:
                log.warning("probe_cycle_failed", error=f"{type(exc).__name__}: {exc}")

    # ---- reload ----------------------------------------------------------------------------------

    async def _reload_loop(self) -> None:
        while True:
            await self.reload_requested.wait()
            self.reload_requested.clear()
            self.notifier.reloading()
            try:
                await self.reload()
            finally:
                self.notifier.ready(self._status_line())

    async def reload(self) -> bool:
        """Read the config file again and apply it; an invalid file changes nothing."""
        if self.config_path is None:
            log.warning("reload_ignored", reason="no configuration file (demo)")
            return False
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            log.error("reload_rejected", error=str(exc))
            return False
        problem = token_problem(self.listener.host, new.http.token)
        if problem is not None:
            # The file may move http.listen to loopback, but the socket in use stays until a restart.
            log.error("reload_rejected", error=f"{new.source}: http.token: {problem} (the server listens on "
                                               f"{self.listener.listen} until a restart)")
            return False
        for warning in new.warnings:
            log.warning("config_readable_by_others", warning=warning)
        old = self._config
        fixed = restart_needed(old, new, self.listener.listen)
        if fixed:
            log.warning("reload_needs_restart", keys=fixed, note="these keep their old values until a restart")
        self._config = new
        self.redactor.update(new.secrets() + old.secrets())
        logs.set_level(new.logging.level)
        if servicetitan_credentials(new) != servicetitan_credentials(old):
            self.kit.servicetitan.update_credentials(servicetitan_credentials(new))
        self.kit.servicetitan.retry_after_max = new.sync.backoff_max.total_seconds()
        if intacct_settings(new) != intacct_settings(old):
            self.kit.intacct.reconfigure(new)  # other credentials, or the other API (intacct.api)
        self.kit.intacct.tune(new)
        self.intacct_monitor.probe_now.set()  # new credentials, or an operator's nudge: probe at once
        await self._apply_auto_sync(new)
        await self._rederive(new)
        self.poller_wake.set()
        self.workers.poke()
        log.info("reloaded", source=new.source)
        return True

    async def _rederive(self, config: Config) -> None:
        """New settings or templates: every record's desired fields follow (records in Intacct keep their id)."""
        key = derivation_key(config.settings, config.mapping)
        try:
            if await self.store.derived_with() == key:
                return
            report = await self.kit.ingestor.rederive()
            await self.store.set_derived_with(key)
        except DB_ERRORS as exc:
            log.warning("rederive_failed", error=f"{type(exc).__name__}: {exc}",
                        note="records follow the new settings as ServiceTitan changes them")
            return
        if report.records:
            log.info("desired_fields_rederived", records=report.records, requeued=report.requeued,
                     kept_project_id=report.kept_id,
                     note="records already in Intacct keep their PROJECTID; new templates apply to the others")

    async def _apply_auto_sync(self, config: Config) -> None:
        before = await self.store.tenant_settings()
        after = await self.store.apply_auto_sync(config.settings.auto_sync, datetime.now(UTC))
        if before is None or (before.auto_sync_on, before.activated_at) != (after.auto_sync_on, after.activated_at):
            log.info("automatic_sync", on=after.auto_sync_on, activated_at=iso(after.activated_at))

    # ---- small things --------------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        assert self.notifier.watchdog_interval
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(self.notifier.watchdog_interval)

    def _status_line(self) -> str:
        return (f"intacct {self.intacct_monitor.state}, servicetitan {self.servicetitan_monitor.state}, "
                f"database {self.database.state}, http {self.listener.listen}")

    def _log_transitions(self, transitions: Sequence[Transition]) -> None:
        tenant = self._config.servicetitan.tenant_id
        for t in transitions:
            log.info("record_transition", tenant=tenant, kind=t.key.kind, st_id=t.key.st_id, reason=t.reason,
                     **{"from": t.from_state, "to": t.to_state}, error=t.error.text() if t.error else None)


async def run(config: Config, config_path: Path | None, *, redactor: logs.Redactor | None = None) -> int:
    """`st-intacct-sync run`."""
    return await Daemon(config, config_path=config_path, redactor=redactor).run()
