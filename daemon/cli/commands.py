"""The commands of `st-intacct-sync` other than check-config (the README's "Commands")."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from adapters.errors import AdapterError
from daemon import logs
from daemon.config import Config, ConfigError, load_config
from daemon.exits import EXIT_BAD_INPUT, EXIT_EXCEPTIONS_REMAIN, EXIT_FAILED, EXIT_OK
from daemon.http import render_status
from daemon.store import DatabaseUnavailable, RecordKey, open_database
from daemon.store import migrate as apply_migrations
from daemon.store.migrations import SchemaError
from daemon.supervisor import StartupError
from daemon.sync import PRIORITY, leases_renewed
from daemon.wiring import new_owner, open_store, open_toolkit

log = logs.get("st_intacct_sync.cli")


class CommandError(Exception):
    """A command cannot proceed; the message is for the operator."""


def load(args: argparse.Namespace, *, daemon: bool = False, lenient: bool = False) -> tuple[Config, logs.Redactor]:
    """Load the configuration and set up logging (the daemon logs to stdout, commands to stderr).

    `lenient`: the command talks only to the database or the daemon's HTTP, so it runs in an admin
    shell that cannot read the service's secrets (config.Section explains what is relaxed).
    From here on every line the command prints passes the redactor, like the log: an error text from a
    library or a server can hold a configured secret, and a print is as public as a log line.
    """
    config = load_config(Path(args.config), lenient=lenient)
    level = config.logging.level if daemon else max_level(config.logging.level, "warning")
    redactor = logs.configure(level=level, fmt=config.logging.format, redactor=logs.Redactor(config.secrets()),
                              stream=sys.stdout if daemon else sys.stderr)
    sys.stdout = logs.RedactingWriter(sys.stdout, redactor)
    sys.stderr = logs.RedactingWriter(sys.stderr, redactor)
    for warning in config.warnings:
        log.warning("config_warning", warning=warning)
    return config, redactor


def max_level(a: str, b: str) -> str:
    order = ["debug", "info", "warning", "error", "critical"]
    return order[max(order.index(a), order.index(b))]


def guarded(body: Any) -> Any:
    """Turn bad input into exit 2 and operational failures into exit 1, each with one line."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(body(args))
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return EXIT_BAD_INPUT
        except (CommandError, DatabaseUnavailable, AdapterError, StartupError, SchemaError) as exc:
            print(f"st-intacct-sync {args.command}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            print(f"st-intacct-sync {args.command}: interrupted", file=sys.stderr)
            return 130

    wrapper.__doc__ = body.__doc__
    return wrapper


@guarded
def run(args: argparse.Namespace) -> int:
    """The daemon in the foreground."""
    from daemon.supervisor import run as run_daemon

    config, redactor = load(args, daemon=True)
    return asyncio.run(run_daemon(config, Path(args.config), redactor=redactor))


@guarded
def migrate(args: argparse.Namespace) -> int:
    """Apply the database migrations."""
    config, _ = load(args, lenient=True)

    async def go() -> list[int]:
        async with open_database(config, patient=False) as dsn:
            import asyncpg

            conn = await asyncpg.connect(dsn, timeout=config.database.connect_timeout.total_seconds())
            try:
                return [m.version for m in await apply_migrations(conn)]
            finally:
                await conn.close()

    applied = asyncio.run(go())
    print(f"applied migrations {applied}" if applied else "database schema is up to date")
    return EXIT_OK


def _status_url(config: Config) -> str:
    host = config.http.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.http.port}/status"


@guarded
def status(args: argparse.Namespace) -> int:
    """Print the running daemon's /status in a readable form."""
    config, _ = load(args, lenient=True)
    url = _status_url(config)
    request = urllib.request.Request(url)
    if config.http.token is not None and not config.http.loopback:
        request.add_header("Authorization", f"Bearer {config.http.token.reveal()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            doc = json.load(response)
    except urllib.error.HTTPError as exc:
        hint = ""
        if exc.code == 401:
            hint = (": it wants http.token, which this shell cannot read (run as root or as the service user)"
                    if config.http.token is None else ": it refused http.token")
        print(f"st-intacct-sync status: the daemon at {url} answered {exc.code}{hint}", file=sys.stderr)
        return EXIT_FAILED
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"st-intacct-sync status: the daemon does not answer at {url} ({exc})", file=sys.stderr)
        return EXIT_FAILED
    print(render_status(doc))
    return EXIT_OK


@guarded
def sync(args: argparse.Namespace) -> int:
    """Sync one record now (ahead of everything else) and print its final state."""
    config, _ = load(args)
    key = RecordKey("job", args.job) if args.job is not None else RecordKey("project", args.project)

    async def go() -> int:
        async with (open_toolkit(lambda: config, owner=new_owner("sync"), pool_size=4, patient=False) as kit,
                    leases_renewed(kit.store, kit.engine, lambda: config.sync.lease)):
            outcome = await kit.gate.ensure([key], timeout=args.timeout)
            for result in outcome.results:
                line = f"{result.key.kind} {result.key.st_id}: {result.state}"
                if result.intacct_project_id:
                    line += f" (Intacct PROJECTID {result.intacct_project_id})"
                if result.error:
                    line += f" — {result.error}"
                print(line)
            if outcome.message:
                print(outcome.message, file=sys.stderr)
            return EXIT_OK if outcome.ok else EXIT_FAILED

    return int(asyncio.run(go()))


@guarded
def backfill(args: argparse.Namespace) -> int:
    """Enqueue ServiceTitan records modified since a date, ignoring the activation time."""
    try:
        since = datetime.combine(date.fromisoformat(args.since), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        print(f"st-intacct-sync backfill: --since {args.since!r} is not a date like 2026-01-31", file=sys.stderr)
        return EXIT_BAD_INPUT
    config, _ = load(args)
    kinds = [args.kind] if args.kind else ["project", "job"]  # projects first: jobs find their parents

    async def go() -> int:
        async with open_toolkit(lambda: config, owner=new_owner("backfill"), pool_size=4, patient=False) as kit:
            total_read = total_enqueued = 0
            started = time.monotonic()
            for kind in kinds:
                read = enqueued = 0
                pages = (kit.servicetitan.iter_projects(modified_on_or_after=since) if kind == "project"
                         else kit.servicetitan.iter_jobs(modified_on_or_after=since))
                async for page in pages:
                    if kind == "project":
                        report = await kit.ingestor.ingest_projects(page)  # type: ignore[arg-type]
                    else:
                        report = await kit.ingestor.ingest_jobs(page)  # type: ignore[arg-type]
                    read += len(page)
                    enqueued += report.result.enqueued
                    _progress(f"backfill {kind}s: {read} read, {enqueued} enqueued "
                              f"({time.monotonic() - started:.0f} s)")
                _progress(f"backfill {kind}s: {read} read, {enqueued} enqueued", done=True)
                total_read += read
                total_enqueued += enqueued
            counts = await kit.store.counts()
        print(f"backfill since {since.date()}: {total_read} records read, {total_enqueued} enqueued; "
              f"queue now: pending {counts['pending']}, synced {counts['synced']}, failed {counts['failed']}. "
              "The running daemon syncs them; follow with `st-intacct-sync status`.")
        return EXIT_OK

    return int(asyncio.run(go()))


def _progress(line: str, *, done: bool = False) -> None:
    if sys.stdout.isatty():
        sys.stdout.write("\r" + line + ("\n" if done else ""))
        sys.stdout.flush()
    elif done:
        print(line, flush=True)
    else:
        print(line, flush=True)


@guarded
def retry(args: argparse.Namespace) -> int:
    """Move failed records back to pending."""
    keys = [RecordKey("job", i) for i in args.job or []] + [RecordKey("project", i) for i in args.project or []]
    if not keys and not args.failed:
        print("st-intacct-sync retry: give --failed, or --job/--project ids", file=sys.stderr)
        return EXIT_BAD_INPUT
    config, _ = load(args, lenient=True)

    async def go() -> int:
        async with open_store(config, pool_size=2, patient=False) as (_dsn, store):
            done = await store.retry_failed(keys, all_failed=args.failed and not keys, priority=PRIORITY // 2,
                                                reason="operator retry (CLI)")
            skipped = [k for k in keys if k not in done]
        print(f"{len(done)} failed record(s) moved back to pending" +
              (f"; not failed (left alone): {', '.join(str(k) for k in skipped)}" if skipped else ""))
        return EXIT_OK

    return int(asyncio.run(go()))


@guarded
def reconcile(args: argparse.Namespace) -> int:
    """Run one reconciliation now and print the summary.

    Exit 0 when no exception remains, 3 when some do: an exception remains when nothing was queued
    to repair it, i.e. records refused by Intacct (failed), waiting for the Intacct connection
    (blocked), projects only Intacct knows (orphans, never deleted), and drift left alone (repairs
    off, or records last changed before the activation time). Drift queued for repair, or already
    waiting in the queue, does not remain. Exit 1 when the run itself failed.
    """
    from daemon.reconcile import CLI_MAIL, ReconcileService, render_text

    config, redactor = load(args)

    def waiting(run_id: int | None) -> None:
        which = f" (run {run_id})" if run_id else ""
        print(f"another reconciliation of tenant {config.servicetitan.tenant_id}{which} is running; "
              "waiting for it to finish…", flush=True)

    async def go() -> int:
        async with open_toolkit(lambda: config, owner=new_owner("reconcile"), pool_size=4, patient=False) as kit:
            service = ReconcileService.from_toolkit(kit, redactor=redactor, mail_policy=CLI_MAIL)
            result = await service.run_once("cli", wait=True, repair=False if args.no_repair else None,
                                            email=not args.no_email, progress=_progress, on_wait=waiting)
        assert result is not None  # waiting for the lock never skips
        if sys.stdout.isatty():
            print()
        if result.outcome is None or result.report is None:
            print(f"st-intacct-sync reconcile: run {result.run.id} failed: {result.run.error}", file=sys.stderr)
            return EXIT_FAILED
        data = service.report_data(result.run, result.outcome)
        text = render_text(data, redactor.redact, per_class=10,
                           rest="at GET /v1/reconcile/latest (and in the CSV of the emailed report)")
        print(text.removesuffix("\n— st-intacct-sync\n").rstrip("\n"))
        print(f"\nReport: {result.mail}.")
        if result.remaining:
            print(f"{result.remaining:,} exception(s) remain and need someone to look at them (exit 3).")
            return EXIT_EXCEPTIONS_REMAIN
        print("No exception remains.")
        return EXIT_OK

    return int(asyncio.run(go()))
