"""The /status document and the /metrics text, both of which keep answering while PostgreSQL is down,
and the status document as text (what `st-intacct-sync status` prints and the demo shows)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from daemon.http.services import Services
from daemon.store import DB_ERRORS, RecordError, iso
from daemon.version import VERSION

SETTINGS = ("enable_intacct_projects", "enable_customer_project_linkage", "enable_project_automatic_synchronization",
            "enable_parent_project_mapping", "use_project_name_for_intacct_project_name")
DB_READ_TIMEOUT_S = 5.0


async def status_document(services: Services) -> dict[str, Any]:
    """The status document; what only the database knows is null while it does not answer."""
    config = services.config()
    settings: dict[str, Any] = {name: getattr(config.settings, name) for name in SETTINGS}
    settings["auto_sync_activated_at"] = None
    doc: dict[str, Any] = {
        "service": "st-intacct-sync",
        "version": VERSION,
        "uptime_s": round(time.monotonic() - services.started, 1),
        "tenant_id": config.servicetitan.tenant_id,
        "settings": settings,
        "connections": {
            "intacct": {**services.intacct_monitor.public(), "api": config.intacct.api},
            "servicetitan": services.servicetitan_monitor.public(),
        },
        "database": None,
        "queue": None,
        "poller": None,
        "reconcile": None,
        "recent_failures": [],
        "replica": {"owner": services.owner, "leader": services.is_leader()},
    }
    if await services.database.check(services.store.pool):
        try:
            async with asyncio.timeout(DB_READ_TIMEOUT_S):
                doc.update(await _from_database(services, settings))
        except DB_ERRORS as exc:
            await services.database.failed(exc)
    doc["database"] = services.database.public()
    return doc


async def _from_database(services: Services, settings: dict[str, Any]) -> dict[str, Any]:
    store = services.store
    counts = await store.counts()
    oldest = await store.oldest_pending()
    tenant = await store.tenant_settings()
    last_poll = await store.last_poll_at()
    latest = await services.reconciler.latest() if services.reconciler else None
    failures = await store.recent_failures(10)
    now = datetime.now(UTC)
    settings["auto_sync_activated_at"] = iso(tenant.activated_at) if tenant and tenant.auto_sync_on else None
    return {
        "queue": {**counts, "oldest_pending_age_s": round((now - oldest).total_seconds(), 1) if oldest else 0.0},
        "poller": {"last_poll_at": iso(last_poll),
                   "lag_s": round((now - last_poll).total_seconds(), 1) if last_poll else None,
                   "rejected_rows": services.rejected_rows()},
        "reconcile": {"last_run_at": latest["finished_at"] if latest else None,
                      "exceptions": latest["exceptions"] if latest else 0},
        "recent_failures": [
            {"kind": f["kind"], "id": f["id"], "error": f["error"].text() if f["error"] else None, "at": iso(f["at"])}
            for f in failures
        ],
    }


async def metrics_text(services: Services, accept: str | None) -> tuple[bytes, str]:
    """The exposition (body, content type) after refreshing what is read from the database, if it answers."""
    metrics, config = services.metrics, services.config()
    for name, monitor in (("intacct", services.intacct_monitor), ("servicetitan", services.servicetitan_monitor)):
        metrics.connection_up.labels(system=name).set(1 if monitor.state == "ok" else 0)
    metrics.leader.set(1 if services.is_leader() else 0)
    metrics.reconcile_interval.set(config.reconcile.interval.total_seconds())
    if await services.database.check(services.store.pool):
        try:
            async with asyncio.timeout(DB_READ_TIMEOUT_S):
                await _refresh(services)
        except DB_ERRORS as exc:
            await services.database.failed(exc)
    metrics.database_up.set(1 if services.database.up else 0)
    return metrics.render(accept)


async def _refresh(services: Services) -> None:
    store, metrics = services.store, services.metrics
    now = datetime.now(UTC)
    metrics.set_counts(await store.counts())
    oldest = await store.oldest_pending()
    metrics.oldest_pending_age.set((now - oldest).total_seconds() if oldest else 0.0)
    last_poll = await store.last_poll_at()
    if last_poll is not None:
        metrics.poll_lag.set((now - last_poll).total_seconds())
    # Every replica reports the tenant's last run (from the database), not only the one that ran it.
    latest = await services.reconciler.latest() if services.reconciler else None
    if latest is not None:
        metrics.set_reconcile(latest)


def render_status(doc: dict[str, Any]) -> str:
    """The /status document as an operator reads it."""
    lines = [f"st-intacct-sync {doc.get('version')} — tenant {doc.get('tenant_id')}, up {doc.get('uptime_s')} s"]
    database = doc.get("database") or {}
    if database and database.get("state") != "ok":
        db_error = RecordError.from_json(database.get("last_error"))
        extra = f" ({db_error.text()})" if db_error else ""
        lines.append(f"  {'database':<13} {database.get('state')} since {database.get('since')}{extra}")
    for name, conn in (doc.get("connections") or {}).items():
        error = RecordError.from_json(conn.get("last_error"))
        extra = f" ({error.text()})" if error else ""
        api = f" over the {conn['api'].upper()} API" if conn.get("api") else ""
        lines.append(f"  {name:<13} {conn.get('state')}{api} since {conn.get('since')}{extra}")
    queue = doc.get("queue") or {}
    lines.append("  queue         " + (", ".join(f"{k} {v}" for k, v in queue.items()) or "unknown (no database)"))
    poller = doc.get("poller") or {}
    lines.append(f"  poller        last poll {poller.get('last_poll_at')}, lag {poller.get('lag_s')} s")
    rec = doc.get("reconcile") or {}
    lines.append(f"  reconcile     last run {rec.get('last_run_at')}, {rec.get('exceptions')} exceptions")
    settings = doc.get("settings") or {}
    lines.append("  settings      " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    for failure in doc.get("recent_failures") or []:
        lines.append(f"  failed        {failure['kind']} {failure['id']}: {failure.get('error')} ({failure.get('at')})")
    return "\n".join(lines)
