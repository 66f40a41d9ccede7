"""The pages people read: overview, queue, a record, reconciliation runs (and a run's CSV)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import UTC, datetime

from aiohttp import web

from daemon.http.pages import chart
from daemon.http.pages import format as fmt
from daemon.http.pages.base import HOURS, REFRESH_S, SERVICES, Viewer, page, render
from daemon.reconcile.report import BOM, LABELS, TRIGGERS, csv_name, render_csv
from daemon.store import CATEGORY_ORDER, Category, RecordKey
from statemachine import STORED_STATES

PAGE_SIZE = 50
HISTORY_SHOWN = 200
RUNS_SHOWN = 25
EXCEPTIONS_SHOWN = 100
CSV_ROWS = 50_000
MAX_SEARCH = 200
STATES = tuple(s.value for s in STORED_STATES)
SETTING_LABELS = (
    ("enable_intacct_projects", "Intacct projects"),
    ("enable_customer_project_linkage", "Link projects to customers"),
    ("enable_project_automatic_synchronization", "Automatic synchronization"),
    ("enable_parent_project_mapping", "Jobs under their project"),
    ("use_project_name_for_intacct_project_name", "Use the project's name"),
)
SHORT = {  # column heads of the runs table; the full label is the heading's title
    Category.FAILED: "Refused", Category.BLOCKED: "Held", Category.MISSING: "Missing", Category.PARENT: "Parent",
    Category.CUSTOMER: "Customer", Category.NAME: "Name", Category.ORPHAN: "Orphan", Category.OUTSIDE: "Older",
    Category.MATCHED: "Agree",
}
NOTICES = {  # the only texts a redirect can ask for: nothing a link carries is shown
    "retried": ("good", "Retrying: the record is waiting for a worker again."),
    "not-failed": ("bad", "Only a refused record can be retried; this one is not refused (any more)."),
    "sync-done": ("good", "Synced: Intacct has it now."),
    "sync-waiting": ("bad", "Not synced yet: see its state and last error below."),
    "reconcile-started": ("good", "A reconciliation has started; it shows here when it ends."),
    "reconcile-unavailable": ("bad", "Reconciliation is not available in this process."),
    "signed-in": ("good", "Signed in."),
    "signed-out": ("good", "Signed out."),
}


def notice(request: web.Request) -> dict[str, str] | None:
    found = NOTICES.get(request.query.get("done", ""))
    return None if found is None else {"tone": found[0], "text": found[1]}


@page
async def overview(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    services = request.app[SERVICES]
    store = services.store
    config = services.config()
    now = datetime.now(UTC)
    # Independent reads, each on a connection of its own: the page waits for the slowest only.
    counts, oldest, tenant, latest, hours = await asyncio.gather(
        store.counts(), store.oldest_pending(), store.tenant_settings(), store.runs.latest(),
        request.app[HOURS].counts(now, store.pages.outcomes_per_hour))
    clock = fmt.Clock(config.report.zone, now)
    connections = [
        {"name": name, "state": monitor.state, "since": monitor.since,
         "error": services.redactor.redact(fmt.error_words(monitor.last_error)) if monitor.state != "ok" else ""}
        for name, monitor in (("Sage Intacct", services.intacct_monitor),
                              ("ServiceTitan", services.servicetitan_monitor))
    ]
    run_counts = [] if latest is None else [
        (LABELS[c], latest.counts.get(c.value, 0)) for c in CATEGORY_ORDER if latest.counts.get(c.value)]
    return render(
        request, viewer, "overview.html", section="overview", refresh=REFRESH_S, notice=notice(request),
        counts=[(s, counts.get(s, 0)) for s in STATES], oldest_pending=oldest,
        chart=chart.build(hours, now, clock.hour), connections=connections, latest_run=latest,
        run_counts=run_counts,
        settings=[(label, bool(getattr(config.settings, name))) for name, label in SETTING_LABELS],
        activated_at=tenant.activated_at if tenant and tenant.auto_sync_on else None,
    )


def _cursor_out(updated_at: datetime, kind: str, st_id: int) -> str:
    raw = json.dumps([updated_at.isoformat(), kind, st_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_in(text: str) -> tuple[datetime, str, int]:
    try:
        at, kind, st_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or kind not in ("job", "project") or not 0 < int(st_id) < 2**63:
            raise ValueError("not a cursor")
        return when, kind, int(st_id)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise web.HTTPBadRequest(text="That page link is broken; start again from the queue.") from None


def _choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise web.HTTPBadRequest(text=f"There is no {what} like that.")
    return value


@page
async def queue(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    q = request.query
    state = _choice(q.get("state"), STATES, "state")
    kind = _choice(q.get("kind"), ("job", "project"), "kind")
    search = (q.get("q") or "").strip()[:MAX_SEARCH]
    after = _cursor_in(q["after"]) if q.get("after") else None
    records = await request.app[SERVICES].store.pages.queue_page(
        state=state, kind=kind, search=search or None, after=after, limit=PAGE_SIZE)
    filters = {"state": state or "", "kind": kind or "", "q": search, "after": after is not None}
    kept = {k: v for k, v in (("state", state), ("kind", kind), ("q", search)) if v}
    next_url = None
    if len(records) == PAGE_SIZE:
        last = records[-1]
        next_url = str(request.rel_url.with_query({**kept, "after": _cursor_out(last.updated_at, last.kind,
                                                                                   last.st_id)}))
    return render(request, viewer, "queue.html", section="queue", refresh=None if after else REFRESH_S,
                  records=records, filters=filters, states=STATES, next_url=next_url,
                  first_url=str(request.rel_url.with_query(kept)))


def record_key(request: web.Request) -> RecordKey:
    kind = request.match_info["kind"]
    raw = request.match_info["id"]
    if kind not in ("job", "project") or not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise web.HTTPNotFound(text="There is no such record.")
    return RecordKey(kind, int(raw))


@page
async def record(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    store = request.app[SERVICES].store
    key = record_key(request)
    found = await store.get(key)
    if found is None:
        raise web.HTTPNotFound(text=f"{key.kind.title()} {key.st_id} is not tracked by this daemon.")
    history = await store.history(key, HISTORY_SHOWN + 1)
    parent = None
    if found.kind == "job" and found.st_project_id is not None:
        parent = await store.get(RecordKey("project", found.st_project_id))
    confirmed = found.synced_fields or {}
    names = list(dict.fromkeys([*found.desired.keys(), *confirmed.keys()]))
    fields = [(n, found.desired.get(n), confirmed.get(n),
               found.synced_fields is not None and found.desired.get(n) != confirmed.get(n)) for n in names]
    return render(request, viewer, "record.html", section="queue", refresh=REFRESH_S, notice=notice(request),
                  record=found, parent=parent, fields=fields, history=history[:HISTORY_SHOWN],
                  history_truncated=len(history) > HISTORY_SHOWN)


def _run_id(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise web.HTTPNotFound(text="There is no such run.")
    return int(raw)


@page
async def runs(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    before = _run_id(request.query["before"]) if request.query.get("before") else None
    found = await request.app[SERVICES].store.pages.reconcile_runs(before=before, limit=RUNS_SHOWN)
    next_url = f"/reconciliation?before={found[-1].id}" if len(found) == RUNS_SHOWN else None
    classes = [(c.value, SHORT.get(c, c.value), LABELS[c]) for c in CATEGORY_ORDER]
    return render(request, viewer, "runs.html", section="reconciliation", refresh=REFRESH_S,
                  notice=notice(request), runs=found, before=before, next_url=next_url, classes=classes)


@page
async def run(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    store = request.app[SERVICES].store
    found = await store.runs.get(_run_id(request.match_info["id"]))
    if found is None:
        raise web.HTTPNotFound(text="There is no such run.")
    raw = request.query.get("after", "0")
    if not raw.isdigit() or int(raw) >= 2**31:
        raise web.HTTPBadRequest(text="That page link is broken; start again from the run.")
    after = int(raw)
    rows = await store.pages.run_exceptions_page(found.id, after=after, limit=EXCEPTIONS_SHOWN)
    next_url = f"/reconciliation/{found.id}?after={rows[-1][0]}" if len(rows) == EXCEPTIONS_SHOWN else None
    remaining = int(found.summary.get("remaining", 0))
    return render(request, viewer, "run.html", section="reconciliation", run=found,
                  findings=[f for _, f in rows], first=rows[0][0] if rows else 0,
                  last=rows[-1][0] if rows else 0, after=after, next_url=next_url, labels=LABELS,
                  counts=[(LABELS[c], found.counts.get(c.value, 0)) for c in CATEGORY_ORDER],
                  trigger=TRIGGERS.get(found.trigger, found.trigger),
                  headline=_headline(found.exceptions, remaining, found.status))


def _headline(exceptions: int, remaining: int, status: str) -> str:
    if status == "running":
        return "Still running."
    if status != "done":  # failed: stopped by an error or by the process ending
        return "This run did not finish."
    if not exceptions:
        return "No exceptions: ServiceTitan and Intacct agree."
    total = f"{exceptions:,} exception{'' if exceptions == 1 else 's'}"
    if not remaining:
        return f"{total}, all already queued to be fixed: nobody needs to act."
    if remaining == 1:
        return f"{total}; 1 needs someone to look at it."
    return f"{total}; {remaining:,} need someone to look at them."


@page
async def run_csv(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    services = request.app[SERVICES]
    store = services.store
    found = await store.runs.get(_run_id(request.match_info["id"]))
    if found is None or found.status != "done":
        raise web.HTTPNotFound(text="That run has no report.")
    findings = await store.runs.exceptions(found.id, CSV_ROWS)
    text, _rows = render_csv(findings, services.redactor.redact)
    name = csv_name(store.tenant_id, found.started_at)
    return web.Response(body=(BOM + text).encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
