"""The reconciliation service: when runs happen, one at a time, and who hears of them.

Runs start from three places: the leader replica's `schedule()` every `reconcile.interval`,
`POST /v1/reconcile` (a background task this service owns and cancels on shutdown), and the
`reconcile` command in a process of its own. A PostgreSQL session advisory lock held on a
dedicated connection serialises them per tenant: the command waits for it, the schedule and the
HTTP endpoint do not (the endpoint answers with the id of the run in progress). A run's row is
created only by the lock holder, so a row still `running` when the lock is taken belongs to a
process that died and is marked failed.

The report is mailed after the lock is released (daemon/reconcile/mail.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from adapters.errors import AdapterError
from adapters.mail import MailClient, MailConfig
from adapters.port import IntacctPort
from adapters.servicetitan import ServiceTitanClient
from daemon import logs
from daemon.config import Config
from daemon.metrics import Metrics
from daemon.reconcile import report
from daemon.reconcile.cadence import digest_run_at
from daemon.reconcile.index import from_us
from daemon.reconcile.mail import DAEMON_MAIL, MailPolicy, ReportMailer
from daemon.reconcile.outcome import Outcome, RunSettings
from daemon.reconcile.run import Run
from daemon.store import DB_ERRORS, Finding, RunRecord, Store, locks
from daemon.sync import Ingestor
from daemon.tasks import TaskSet

log = logs.get("st_intacct_sync.reconcile")

LATEST_EXCEPTIONS = 1000  # served by /v1/reconcile/latest, with the total beside them
KEEP_RUNS = 500
STARTUP_GRACE_S = 300.0  # the first run of a fresh install waits for the poller to catch up
RETRY_FAILED_AFTER_S = 900.0
SKIPPED_RECHECK_S = 60.0


@dataclass(frozen=True)
class RunResult:
    """A finished run as the caller sees it."""

    run: RunRecord
    outcome: Outcome | None  # None when the run failed
    report: report.Report | None
    mail: str  # what happened to the email, in words

    @property
    def remaining(self) -> int:
        return 0 if self.outcome is None else self.outcome.remaining


class ReconcileService:
    """Starts, serialises, stores and reports reconciliation runs of one tenant."""

    def __init__(
        self,
        *,
        store: Store,
        servicetitan: ServiceTitanClient,
        intacct: IntacctPort,
        ingestor: Ingestor,
        config: Callable[[], Config],
        dsn: str,
        metrics: Metrics | None = None,
        redactor: logs.Redactor | None = None,
        mail_policy: MailPolicy = DAEMON_MAIL,
        mailer: Callable[[MailConfig], MailClient] = MailClient,
        tasks: TaskSet | None = None,
    ) -> None:
        self.store = store
        self.st = servicetitan
        self.intacct = intacct
        self.ingestor = ingestor
        self._config = config
        self.dsn = dsn
        self.metrics = metrics
        self.redactor = redactor or logs.Redactor(config().secrets())
        self.mail = ReportMailer(store, self.redactor, mail_policy, mailer, metrics)
        # Runs started over HTTP: the daemon's own task set when given, so that shutdown owns them too.
        self._tasks = tasks or TaskSet()
        self._started = 0
        self._created = datetime.now(UTC)
        self._latest: tuple[int, list[Finding]] | None = None

    @classmethod
    def from_toolkit(cls, kit: Any, **options: Any) -> ReconcileService:
        """The service over a `daemon.wiring.Toolkit`."""
        return cls(store=kit.store, servicetitan=kit.servicetitan, intacct=kit.intacct, ingestor=kit.ingestor,
                   config=kit.config, dsn=kit.dsn, metrics=kit.metrics, **options)

    @property
    def tenant_id(self) -> int:
        return self.store.tenant_id

    # ---- the HTTP layer's Reconciler protocol ----------------------------------------------------

    async def start_run(self, trigger: str) -> int:
        """Start a run in the background; its id (or that of the run already in progress)."""
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._started += 1
        self._tasks.spawn(f"reconcile-{trigger}-{self._started}", self._background(trigger, started), ends=True)
        return await asyncio.shield(started)

    async def _background(self, trigger: str, started: asyncio.Future[int]) -> None:
        try:
            await self.run_once(trigger, wait=False, started=started)
        except Exception as exc:
            log.exception("reconcile_failed", trigger=trigger)
            if not started.done():
                started.set_exception(exc)
        finally:
            if not started.done():
                started.cancel()

    async def latest(self) -> dict[str, Any] | None:
        """The last finished run's summary and (at most 1,000 of) its exceptions."""
        run = await self.store.runs.latest()
        if run is None:
            return None
        self._gauge(run)
        if self._latest is None or self._latest[0] != run.id:
            self._latest = (run.id, await self.store.runs.exceptions(run.id, LATEST_EXCEPTIONS))
        items = self._latest[1]
        doc = run.public()
        doc["exception_list"] = [f.public() for f in items]
        doc["exception_list_truncated"] = run.exceptions > len(items)
        return doc

    async def _refresh_gauge(self) -> None:
        self._gauge(await self.store.runs.latest())

    def _gauge(self, run: RunRecord | None) -> None:
        # Successful runs only: an alert on this gauge's age should fire while runs keep failing.
        if self.metrics is not None and run is not None and run.status == "done" and run.finished_at is not None:
            self.metrics.last_reconcile.set(run.finished_at.timestamp())

    async def aclose(self) -> None:
        """Cancel the runs started over HTTP (shutdown); each marks itself failed."""
        await self._tasks.stop(*self._tasks.names("reconcile-"))

    # ---- the leader's schedule -------------------------------------------------------------------

    async def schedule(self) -> None:
        """Run every `reconcile.interval`, counted from the last run of any replica or command."""
        while True:
            config = self._config()
            if not config.settings.enable_intacct_projects:
                await asyncio.sleep(SKIPPED_RECHECK_S)
                continue
            wait = await self._due_in(config)
            if wait > 0:
                await asyncio.sleep(min(wait, 30.0))  # a reload may change the interval meanwhile
                continue
            try:
                result = await self.run_once("schedule", wait=False)
            except Exception:
                # A bug or an outage: logged and stored; the next attempt comes after the usual wait.
                log.exception("reconcile_failed", trigger="schedule")
                await asyncio.sleep(SKIPPED_RECHECK_S)
                continue
            if result is None:
                log.info("reconcile_skipped", reason="another reconciliation of this tenant is running")
                await asyncio.sleep(SKIPPED_RECHECK_S)

    async def _due_in(self, config: Config) -> float:
        interval = config.reconcile.interval.total_seconds()
        await self._refresh_gauge()  # runs of other replicas and of the command count too
        newest = await self.store.runs.newest()
        now = datetime.now(UTC)
        if newest is None:
            due = self._created + timedelta(seconds=min(interval, STARTUP_GRACE_S))
        elif newest.status == "failed":
            due = (newest.finished_at or newest.started_at) + timedelta(seconds=min(interval, RETRY_FAILED_AFTER_S))
        else:
            due = newest.started_at + timedelta(seconds=interval)
        report = config.report
        if report.email is not None:  # the daily digest brings a run of its own
            digest = digest_run_at(report.daily_at, report.zone, await self.store.runs.report_sent(),
                                   newest.started_at if newest is not None else None, now)
            due = min(due, digest) if digest is not None else due
        return (due - now).total_seconds()

    # ---- one run ---------------------------------------------------------------------------------

    async def run_once(
        self,
        trigger: str,
        *,
        wait: bool,
        repair: bool | None = None,
        email: bool = True,
        progress: Callable[[str], None] | None = None,
        on_wait: Callable[[int | None], None] | None = None,
        started: asyncio.Future[int] | None = None,
    ) -> RunResult | None:
        """One reconciliation; None when another holds the lock and `wait` is false."""
        config = self._config()
        repair = config.reconcile.repair if repair is None else repair
        async with self._lock(wait=wait, on_wait=on_wait) as held:
            if not held:
                if started is not None and not started.done():
                    started.set_result(await self._running_id())
                return None
            previous = await self.store.runs.latest()
            tenant = await self.store.tenant_settings()
            # Automatic sync off: nothing is expected in Intacct but what was synced before.
            activated = tenant.activated_at if tenant is not None and tenant.auto_sync_on else None
            scope = config.reconcile.scope
            run = await self.store.runs.start(trigger, scope, repair,
                                                       activated if scope == "activated" else None)
            if started is not None and not started.done():
                started.set_result(run.id)
            log.info("reconcile_started", run=run.id, trigger=trigger, scope=scope, repair=repair)
            if config.settings.enable_intacct_projects:
                outcome = await self._execute(run, config, repair, activated, progress)
            else:
                outcome = None
                await self._fail(run.id, "settings.enable_intacct_projects is off: nothing is synced to Intacct, "
                                 "so there is nothing to reconcile", 0.0)
            if outcome is None:
                stored = await self.store.runs.get(run.id)
                assert stored is not None
                return RunResult(stored, None, None, "not sent: the run failed")
            await self._carry_ages(outcome, previous, run.started_at)
            summary = {
                "remaining": outcome.remaining,
                "actions": dict(outcome.actions),
                "outside_scope": _outside(outcome),
                "pages": outcome.pages,
                "records_read": outcome.records_read,
                "auto_sync_on": bool(tenant and tenant.auto_sync_on),
                "projects_compared": config.settings.syncs("project"),
            }
            finished = await self.store.runs.finish(
                run.id, status="done", counts=dict(outcome.counts), exceptions=outcome.exceptions,
                timings=outcome.timings, error=None, summary=summary, findings=outcome.findings)
            if self.metrics is not None:
                self.metrics.last_reconcile.set(finished.timestamp())
            await self.store.runs.prune(KEEP_RUNS)
            log.info("reconcile_finished", run=run.id, exceptions=outcome.exceptions, remaining=outcome.remaining,
                     counts=dict(outcome.counts), seconds=outcome.timings.get("total"))
        stored = await self.store.runs.get(run.id)
        assert stored is not None
        rendered = report.build(self.report_data(stored, outcome), self.redactor.redact)
        mail = await self.mail.deliver(stored.id, rendered, outcome.findings, email=email, config=config)
        stored = await self.store.runs.get(run.id) or stored
        return RunResult(stored, outcome, rendered, mail)

    async def _execute(self, run: RunRecord, config: Config, repair: bool, activated: datetime | None,
                       progress: Callable[[str], None] | None) -> Outcome | None:
        settings = RunSettings(config.settings, config.mapping, config.reconcile.scope, activated, repair)
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            outcome = await Run(store=self.store, servicetitan=self.st, intacct=self.intacct,
                                ingestor=self.ingestor, settings=settings, started_at=run.started_at,
                                progress=progress).execute()
        except asyncio.CancelledError:
            await self._fail(run.id, "interrupted: the daemon stopped or lost leadership", loop.time() - began)
            raise
        except (AdapterError, *DB_ERRORS) as exc:
            message = exc.message if isinstance(exc, AdapterError) else f"{type(exc).__name__}: {exc}"
            log.error("reconcile_failed", run=run.id, error=self.redactor.redact(message))
            await self._fail(run.id, self.redactor.redact(message), loop.time() - began)
            return None
        return outcome

    async def _fail(self, run_id: int, error: str, seconds: float) -> None:
        # Shielded and bounded: a cancelled run still leaves its row failed rather than running.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self.store.runs.finish(
                run_id, status="failed", counts={}, exceptions=0, timings={"total": round(seconds, 3)},
                error=error, summary={})), 10)

    async def _carry_ages(self, outcome: Outcome, previous: RunRecord | None, started_at: datetime) -> None:
        """An exception reported by the previous run too keeps its first `since`."""
        earlier = await self.store.runs.exception_since(previous.id) \
            if previous is not None and previous.status == "done" else {}
        outcome.findings = [
            _with_since(f, earlier.get(f.identity) or f.since or started_at) for f in outcome.findings
        ]

    async def _running_id(self) -> int:
        # The lock holder creates its row right after taking the lock: give it a moment.
        for _ in range(50):
            run_id = await self.store.runs.running()
            if run_id is not None:
                return run_id
            await asyncio.sleep(0.1)
        newest = await self.store.runs.newest()
        return newest.id if newest is not None else 0

    @contextlib.asynccontextmanager
    async def _lock(self, *, wait: bool, on_wait: Callable[[int | None], None] | None) -> AsyncIterator[bool]:
        """Hold the tenant's reconcile lock on a connection of its own (it dies with the process)."""
        key = locks.lock_key("reconcile", self.tenant_id)
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            held = await locks.try_lock(conn, key)
            if not held and wait:
                if on_wait is not None:
                    on_wait(await self.store.runs.running())
                await locks.lock(conn, key)
                held = True
            try:
                yield held
            finally:
                if held:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(locks.unlock(conn, key))
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    # ---- the report ------------------------------------------------------------------------------

    def report_data(self, run: RunRecord, outcome: Outcome) -> report.ReportData:
        """What the report of a finished run shows."""
        outside = outcome.outside
        return report.ReportData(
            tenant_id=self.tenant_id, run_id=run.id, trigger=run.trigger, scope=run.scope, repair=run.repair,
            period_start=run.period_start, started_at=run.started_at,
            finished_at=run.finished_at or datetime.now(UTC), counts=run.counts, findings=outcome.findings,
            outside_count=outside.count,
            outside_oldest=None if outside.oldest_us is None else from_us(outside.oldest_us),
            outside_newest=None if outside.newest_us is None else from_us(outside.newest_us),
            auto_sync_on=bool(run.summary.get("auto_sync_on", True)),
            projects_compared=bool(run.summary.get("projects_compared", True)),
        )


def _with_since(f: Finding, since: datetime) -> Finding:
    return Finding(f.category, f.kind, f.st_id, f.st_number, f.st_name, f.intacct_project_id, f.intacct_name,
                   f.detail, f.action, f.needs_attention, since)


def _outside(outcome: Outcome) -> dict[str, Any] | None:
    o = outcome.outside
    if not o.count:
        return None
    return {"count": o.count,
            "oldest_change": None if o.oldest_us is None else from_us(o.oldest_us).isoformat(),
            "newest_change": None if o.newest_us is None else from_us(o.newest_us).isoformat()}
