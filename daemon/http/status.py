"""The /status document as text: what `st-intacct-sync status` prints and the demo shows."""

from __future__ import annotations

from typing import Any

from daemon.sync import error_text


def render_status(doc: dict[str, Any]) -> str:
    """The /status document as an operator reads it."""
    lines = [f"st-intacct-sync {doc.get('version')} — tenant {doc.get('tenant_id')}, up {doc.get('uptime_s')} s"]
    for name, conn in (doc.get("connections") or {}).items():
        extra = f" ({error_text(conn.get('last_error'))})" if conn.get("last_error") else ""
        api = f" over the {conn['api'].upper()} API" if conn.get("api") else ""
        lines.append(f"  {name:<13} {conn.get('state')}{api} since {conn.get('since')}{extra}")
    queue = doc.get("queue") or {}
    lines.append("  queue         " + ", ".join(f"{k} {v}" for k, v in queue.items()))
    poller = doc.get("poller") or {}
    lines.append(f"  poller        last poll {poller.get('last_poll_at')}, lag {poller.get('lag_s')} s")
    rec = doc.get("reconcile") or {}
    lines.append(f"  reconcile     last run {rec.get('last_run_at')}, {rec.get('exceptions')} exceptions")
    settings = doc.get("settings") or {}
    lines.append("  settings      " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    for failure in doc.get("recent_failures") or []:
        lines.append(f"  failed        {failure['kind']} {failure['id']}: {failure.get('error')} ({failure.get('at')})")
    return "\n".join(lines)
