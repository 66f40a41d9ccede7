"""When the accountants get a report (report.send, report.daily_at): the decision, without I/O.

`on-change` (the default) sends when the set of open exceptions differs from the one the last sent
report listed: something new, or something resolved (all resolved included). `on-exceptions` sends
every run that found some, `always` every run. With `daily_at`, the first run at or after that local
time each day (the scheduler starts one then) sends a digest of everything open, changed or not.
What was last sent lives in the database (ReportSent), so a restart changes none of this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from daemon.store import Finding, ReportSent


@dataclass(frozen=True)
class Decision:
    """Whether to send, why (in words, for the log and the run's record), and whether it is the digest."""

    send: bool
    reason: str
    digest: bool = False


def fingerprint(findings: Iterable[Finding]) -> str:
    """The open exceptions as a set: the same exceptions in any order give the same value."""
    keys = sorted(repr(f.identity) for f in findings)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def digest_due(daily_at: time | None, zone: tzinfo, last: ReportSent | None, now: datetime) -> bool:
    """Whether today's digest (local day) is due at `now` and not yet sent."""
    if daily_at is None:
        return False
    local = now.astimezone(zone)
    sent_on = last.digest_on if last is not None else None
    return local.time() >= daily_at and (sent_on is None or sent_on < local.date())


def digest_run_at(daily_at: time | None, zone: tzinfo, last: ReportSent | None, newest_run: datetime | None,
                  now: datetime) -> datetime | None:
    """When the scheduler should start a run for the digest: now when today's is due and no run started
    since its time (one that did and failed to mail is not repeated until tomorrow), else the next
    daily_at; None without daily_at."""
    if daily_at is None:
        return None
    local = now.astimezone(zone)
    today = _at(local.date(), daily_at, zone)
    if digest_due(daily_at, zone, last, now) and (newest_run is None or newest_run < today):
        return now
    return today if local < today else _at(local.date() + timedelta(days=1), daily_at, zone)


def _at(day: date, moment: time, zone: tzinfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone)


def decide(send: str, daily_at: time | None, zone: tzinfo, findings: list[Finding], last: ReportSent | None,
           now: datetime) -> Decision:
    """Whether this run's report goes out under `report.send` and `report.daily_at`."""
    if digest_due(daily_at, zone, last, now):
        return Decision(True, f"the daily digest ({daily_at:%H:%M} {now.astimezone(zone).tzname()})", digest=True)
    if send == "always":
        return Decision(True, "report.send: always")
    if send == "on-exceptions":
        if findings:
            return Decision(True, "exceptions found (report.send: on-exceptions)")
        return Decision(False, "no exceptions (report.send: on-exceptions)")
    previous = last.fingerprint if last is not None else fingerprint([])
    if fingerprint(findings) != previous:
        return Decision(True, "the open exceptions changed since the last report (report.send: on-change)")
    since = f" of {last.sent_at:%Y-%m-%d %H:%M} UTC" if last is not None else ""
    return Decision(False, f"unchanged since the last report{since} (report.send: on-change)")
