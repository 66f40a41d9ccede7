"""The accountants' reconciliation report: text, HTML and a CSV attachment.

Written for accountants: plain words instead of internal codes (the CSV keeps the class codes in
its `class` column for filtering), the IDs they search for in ServiceTitan and Intacct, scope and
period first, then the counts, then each exception with its age and what was done about it.

The CSV is built with the csv module; a cell that a spreadsheet would run as a formula (starting
with = + - @, tab or carriage return) is prefixed with a quote, and so is such a character after a
`;`, tab or `|` (Excel in German, French, Dutch, Spanish and Italian locales splits lines at `;`, other
tools at a tab or `|`, so a new cell starts there). Bidirectional controls (overrides, embeddings,
isolates, marks) are dropped from every text of the report: they can make an id read in another order
than it is written. Intacct still gets names exactly as ServiceTitan has them. Every text passes
through `redact` so that a configured secret can never reach a report, whatever a name or an error
message holds.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from daemon.reconcile.outcome import needing_attention
from daemon.store import CATEGORY_ORDER, NOT_EXCEPTIONS, Category, Finding

CSV_HEADER = ("class", "kind", "servicetitan_id", "servicetitan_number", "servicetitan_name",
              "intacct_project_id", "intacct_name", "detail", "action")
PER_CLASS_IN_BODY = 50  # the body lists this many exceptions of each class; the CSV has them all
CSV_LIMIT = 50_000  # rows: keeps the attachment within what mail servers accept (~6 MB)
# Excel reads a CSV without a byte-order mark in the machine's legacy code page and garbles accented
# and non-Latin names; with it, as UTF-8. Other readers skip it (the header line follows unchanged).
BOM = "\ufeff"

LABELS: Mapping[Category, str] = {
    Category.FAILED: "Refused by Intacct (needs attention)",
    Category.BLOCKED: "Waiting for the Intacct connection",
    Category.MISSING: "Missing in Intacct",
    Category.PARENT: "Under the wrong parent project in Intacct",
    Category.CUSTOMER: "Linked to the wrong customer in Intacct",
    Category.NAME: "Named differently in Intacct",
    Category.ORPHAN: "In Intacct only (no ServiceTitan job or project)",
    Category.OUTSIDE: "Older than the sync start, not in Intacct (not an exception)",
    Category.MATCHED: "In agreement",
}
TRIGGERS = {"schedule": "the regular schedule", "http": "a request to the daemon", "cli": "the command line"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A formula character where a spreadsheet may start a cell: after ; tab or |, past spaces and quotes.
_FORMULA_AFTER_SEPARATOR = re.compile(r"([;\t|][ \"']*)(?=[=+\-@])")
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows about one finished run."""

    tenant_id: int
    run_id: int
    trigger: str
    scope: str  # activated | all
    repair: bool
    period_start: datetime | None  # the activation time (scope `activated`); None: no start
    started_at: datetime
    finished_at: datetime
    counts: Mapping[str, int]
    findings: Sequence[Finding]  # every exception, `since` filled in
    outside_count: int = 0
    outside_oldest: datetime | None = None
    outside_newest: datetime | None = None
    auto_sync_on: bool = True
    projects_compared: bool = True  # False: parent mapping off, the project side was left out
    zone: tzinfo = UTC  # report.timezone: every time shown is in it (the attachment name stays UTC)

    @property
    def exceptions(self) -> int:
        return len(self.findings)

    @property
    def remaining(self) -> int:
        return needing_attention(self.findings)


@dataclass(frozen=True)
class Report:
    """A rendered report."""

    subject: str
    text: str
    html: str
    csv_name: str
    csv_text: str
    csv_rows: int = field(default=0)


def when(value: datetime | None, zone: tzinfo = UTC) -> str:
    """A time as accountants read it, in their time zone (report.timezone): 25 Nov 2026 10:00 CST."""
    if value is None:
        return "—"
    local = value.astimezone(zone)
    return local.strftime("%d %b %Y %H:%M ").lstrip("0") + (local.tzname() or "UTC")


def age(since: datetime | None, now: datetime) -> str:
    """How long an exception has been open, in words."""
    if since is None:
        return "new"
    seconds = max(0.0, (now - since).total_seconds())
    if seconds < 60:
        return "new"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return plural(int(seconds // 3600), "hour")
    return f"{int(seconds // 86400)} days"


def open_for(since: datetime | None, now: datetime, zone: tzinfo = UTC) -> str:
    """The age of an exception with the time it started, for the report's lines."""
    words = age(since, now)
    return "new in this run" if words == "new" else f"{words} (since {when(since, zone)})"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def subject(tenant_id: int, exceptions: int) -> str:
    """The Contract's subject line (a count of one is singular)."""
    return f"[st-intacct-sync] Reconciliation {tenant_id}: {plural(exceptions, 'exception')}"


def csv_name(tenant_id: int, started_at: datetime) -> str:
    """The Contract's attachment name, with the run's UTC start."""
    return f"reconciliation-{tenant_id}-{started_at.astimezone(UTC):%Y%m%dT%H%MZ}.csv"


def plain(text: str) -> str:
    """`text` without bidirectional controls (what every text of the report shows)."""
    return _BIDI_CONTROLS.sub("", text)


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet will show as text, never run as a formula, in any locale."""
    text = _FORMULA_AFTER_SEPARATOR.sub(r"\1'", plain("" if value is None else str(value)))
    return "'" + text if text.startswith(_FORMULA_START) else text


def _kind_word(kind: str | None) -> str:
    return {"job": "Job", "project": "Project"}.get(kind or "", "Record")


def scope_lines(data: ReportData) -> list[str]:
    """Scope and period, in words."""
    if data.scope == "all":
        scope = "Every job and project in ServiceTitan."
        period = f"Everything up to {when(data.started_at, data.zone)}."
    elif data.period_start is None:
        scope = ("Only jobs and projects synced before: automatic sync is off, so nothing else is "
                 "expected in Intacct.")
        period = f"Up to {when(data.started_at, data.zone)}."
    else:
        scope = (f"Jobs and projects created or changed in ServiceTitan since automatic sync started "
                 f"({when(data.period_start, data.zone)}), and every record synced before.")
        period = f"{when(data.period_start, data.zone)} to {when(data.started_at, data.zone)}."
    took = (data.finished_at - data.started_at).total_seconds()
    repairs = ("on: missing and differing Intacct projects are queued to be fixed; nothing is ever deleted."
               if data.repair else "off: nothing was changed, this report only describes what differs.")
    if not data.projects_compared:
        scope += (" ServiceTitan projects are left out: parent project mapping is off, so only jobs "
                  "are synced to Intacct.")
    return [
        f"Scope:    {scope}",
        f"Period:   {period}",
        f"Run:      #{data.run_id}, started {when(data.started_at, data.zone)} "
        f"by {TRIGGERS.get(data.trigger, data.trigger)}, "
        f"took {took:.0f} s.",
        f"Repairs:  {repairs}",
    ]


def count_rows(data: ReportData) -> list[tuple[str, int]]:
    """(label, count) of every class, in report order."""
    return [(LABELS[c], int(data.counts.get(c.value, 0))) for c in CATEGORY_ORDER]


def headline(data: ReportData) -> str:
    """The one-line verdict."""
    if not data.exceptions:
        return "No exceptions: ServiceTitan and Intacct agree."
    total = plural(data.exceptions, "exception")
    if not data.remaining:
        queued = "already queued" if data.exceptions == 1 else "all already queued"
        return f"{total}, {queued} to be fixed: nobody needs to act."
    if data.remaining == data.exceptions:
        return f"{total}; it needs someone to look at it." if data.exceptions == 1 else \
            f"{total}; each needs someone to look at it."
    others = "the other is" if data.exceptions - data.remaining == 1 else "the others are"
    if data.remaining == 1:
        return f"{total}; 1 of them needs someone to look at it ({others} already queued to be fixed)."
    return (f"{total}; {data.remaining:,} of them need someone to look at them "
            f"({others} already queued to be fixed).")


def backfill_hint(data: ReportData) -> str | None:
    """Why older records are not in Intacct, and the command that brings them over."""
    if not data.outside_count:
        return None
    # The date for --since: the day of the oldest change in the accountants' zone (a day early in UTC
    # terms at worst, which only brings in a few more records).
    oldest = data.outside_oldest.astimezone(data.zone).date().isoformat() if data.outside_oldest else "YYYY-MM-DD"
    first, last = when(data.outside_oldest, data.zone), when(data.outside_newest, data.zone)
    if data.outside_oldest and data.outside_newest and first != last:
        span = f"between {when(data.outside_oldest, data.zone)} and {when(data.outside_newest, data.zone)}"
    elif data.outside_oldest:
        span = f"on {when(data.outside_oldest, data.zone)}"
    else:
        span = "before automatic sync started"
    what = "older job or project" if data.outside_count == 1 else "older jobs and projects"
    verb = "is" if data.outside_count == 1 else "are"
    them = "it" if data.outside_count == 1 else "them"
    return (f"{data.outside_count:,} {what}, last changed in ServiceTitan {span}, {verb} not in Intacct. "
            f"That is expected: automatic sync is not retroactive. To bring {them} over, an administrator "
            f"can run:  st-intacct-sync backfill --since {oldest}")


def _grouped(findings: Sequence[Finding]) -> list[tuple[Category, list[Finding]]]:
    groups: dict[Category, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.category, []).append(f)
    return [(c, groups[c]) for c in CATEGORY_ORDER if c in groups]


def _title(f: Finding) -> str:
    if f.category is Category.ORPHAN:
        return f"Intacct project {f.intacct_project_id} “{f.intacct_name or ''}”"
    number = f.st_number or f.st_id
    return (f"{_kind_word(f.kind)} {number} (ServiceTitan id {f.st_id}) — Intacct project "
            f"{f.intacct_project_id} “{f.st_name or ''}”")


def render_text(data: ReportData, redact: Callable[[str], str] = str, per_class: int = PER_CLASS_IN_BODY,
                rest: str = "in the attached CSV") -> str:
    """The plain-text part (`per_class` exceptions of each class, the `rest` elsewhere)."""
    lines = [f"Reconciliation of ServiceTitan tenant {data.tenant_id} with Sage Intacct", ""]
    lines += scope_lines(data)
    lines += ["", headline(data), ""]
    width = max(len(label) for label, _ in count_rows(data))
    lines += [f"  {label:<{width}}  {n:>9,}" for label, n in count_rows(data)]
    hint = backfill_hint(data)
    if hint:
        lines += ["", hint]
    if data.findings:
        lines += ["", "Exceptions", "=========="]
        for category, items in _grouped(data.findings):
            lines += ["", f"{LABELS[category]}: {len(items):,}"]
            for f in items[:per_class]:
                lines.append(f"  - {_title(f)}")
                lines.append(f"    What:     {f.detail}")
                lines.append(f"    Action:   {f.action}")
                lines.append(f"    Open for: {open_for(f.since, data.started_at, data.zone)}")
            if len(items) > per_class:
                lines.append(f"  … and {len(items) - per_class:,} more {rest}.")
        lines += ["", f"The full list, one exception per line, is {rest}."]
    lines += ["", "— st-intacct-sync"]
    return redact(plain("\n".join(lines) + "\n"))


def render_html(data: ReportData, redact: Callable[[str], str] = str) -> str:
    """The HTML part: the same content, every text escaped."""

    def e(value: object) -> str:
        return html.escape(redact(plain(str(value))), quote=True)

    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8"></head>',
           '<body style="font-family: Arial, sans-serif; font-size: 14px;">',
           f"<h2>Reconciliation of ServiceTitan tenant {e(data.tenant_id)} with Sage Intacct</h2>",
           "<table>"]
    for line in scope_lines(data):
        label, _, text = line.partition(":")
        out.append(f'<tr><th align="left" valign="top">{e(label)}</th><td>{e(text.strip())}</td></tr>')
    out += ["</table>", f"<p><b>{e(headline(data))}</b></p>",
            '<table border="1" cellpadding="4" style="border-collapse: collapse;">']
    for label, n in count_rows(data):
        out.append(f'<tr><td>{e(label)}</td><td align="right">{n:,}</td></tr>')
    out.append("</table>")
    hint = backfill_hint(data)
    if hint:
        out.append(f"<p>{e(hint)}</p>")
    if data.findings:
        out.append("<h3>Exceptions</h3>")
        for category, items in _grouped(data.findings):
            out += [f"<h4>{e(LABELS[category])}: {len(items):,}</h4>",
                    '<table border="1" cellpadding="4" style="border-collapse: collapse;">',
                    "<tr><th>ServiceTitan</th><th>Intacct project</th><th>Open for</th><th>What</th>"
                    "<th>Action</th></tr>"]
            for f in items[:PER_CLASS_IN_BODY]:
                st = "—" if f.st_id is None else \
                    f"{_kind_word(f.kind)} {f.st_number or f.st_id} (id {f.st_id}) “{f.st_name or ''}”"
                ia = f"{f.intacct_project_id} “{f.intacct_name}”" if f.intacct_name else f"{f.intacct_project_id}"
                opened = open_for(f.since, data.started_at, data.zone)
                out.append(f"<tr><td>{e(st)}</td><td>{e(ia)}</td><td>{e(opened)}</td>"
                           f"<td>{e(f.detail)}</td><td>{e(f.action)}</td></tr>")
            out.append("</table>")
            if len(items) > PER_CLASS_IN_BODY:
                out.append(f"<p>… and {len(items) - PER_CLASS_IN_BODY:,} more in the attached CSV.</p>")
        out.append("<p>The attached CSV lists every exception, one per line.</p>")
    out += ["<p>— st-intacct-sync</p>", "</body></html>"]
    return "\n".join(out) + "\n"


def render_csv(findings: Sequence[Finding], redact: Callable[[str], str] = str) -> tuple[str, int]:
    """The attachment (every exception, in report order) and its number of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    rows = 0
    for _category, items in _grouped(findings):
        for f in items:
            if rows == CSV_LIMIT:
                break
            writer.writerow([safe_cell(redact(str(v))) if v is not None else "" for v in (
                f.category.value, f.kind, f.st_id, f.st_number, f.st_name, f.intacct_project_id, f.intacct_name,
                f.detail, f.action)])
            rows += 1
    return buffer.getvalue(), rows


def build(data: ReportData, redact: Callable[[str], str] = str) -> Report:
    """Render every part of the report."""
    assert all(f.category not in NOT_EXCEPTIONS for f in data.findings)
    text = render_text(data, redact)
    csv_text, rows = render_csv(data.findings, redact)
    if rows < len(data.findings):
        text += f"\nThe CSV holds the first {rows:,} of {len(data.findings):,} exceptions.\n"
    return Report(subject(data.tenant_id, data.exceptions), text, render_html(data, redact),
                  csv_name(data.tenant_id, data.started_at), BOM + csv_text, rows)
