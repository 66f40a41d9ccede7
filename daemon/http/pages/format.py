"""How values read on the page: times on the reader's clock (`report.timezone`), ages in words, and
Intacct's errors in its own words. Registered as Jinja filters; none of them builds markup.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from daemon.store import RecordError
from statemachine import State

STATE_WORDS = {
    State.PENDING.value: "Waiting",
    State.SYNCING.value: "Syncing",
    State.SYNCED.value: "In Intacct",
    State.BLOCKED.value: "Connection down",
    State.FAILED.value: "Refused",
}


class Clock:
    """Formats times in one zone; `now` is fixed per request so that ages agree within a page."""

    def __init__(self, tz: tzinfo, now: datetime | None = None) -> None:
        self.tz = tz
        self.now = now or datetime.now(UTC)

    def when(self, value: datetime | None) -> str:
        """30 Nov 2026 14:05 CET."""
        if value is None:
            return "—"
        local = value.astimezone(self.tz)
        return f"{local:%d %b %Y %H:%M} {local.tzname() or ''}".lstrip("0").strip()

    def exact(self, value: datetime | None) -> str:
        """30 Nov 2026 14:05:09 CET: for histories, where several changes share a minute."""
        if value is None:
            return "—"
        local = value.astimezone(self.tz)
        return f"{local:%d %b %Y %H:%M:%S} {local.tzname() or ''}".lstrip("0").strip()

    def hour(self, value: datetime) -> str:
        return f"{value.astimezone(self.tz):%H:%M}"

    def ago(self, value: datetime | None) -> str:
        """'3 min ago', 'in 20 s', for times near now."""
        if value is None:
            return "—"
        seconds = (self.now - value).total_seconds()
        words = duration(abs(seconds))
        if abs(seconds) < 1:
            return "now"
        return f"{words} ago" if seconds > 0 else f"in {words}"


def duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds // 86400:.0f} days"


def iso(value: datetime | None) -> str:
    """The machine-readable time of a <time> element."""
    return "" if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def error_words(error: RecordError | None) -> str:
    """A stored error as Intacct (or the daemon) worded it, or nothing."""
    return (error.text() if error else None) or ""


def state_word(state: str) -> str:
    return STATE_WORDS.get(state, state)
