"""ServiceTitan rows the adapter could not take in: logged once, counted, and the last few kept for /status.

Such a row (an id outside 1…2^63−1, a number of thousands of digits, no creation time) is skipped
on its own and the feed's cursor moves on; an operator learns of it here, not from a stalled feed.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from adapters.servicetitan import RejectedRow
from daemon import logs

log = logs.get("st_intacct_sync.poller")

KEEP = 20  # rows listed in /status
_REMEMBERED = 10_000  # rows recognised as already logged (a feed may repeat a row)


class RejectedRows:
    """The rejected rows seen by this process's poller."""

    def __init__(self, count: Callable[[str], None] | None = None) -> None:
        self._count = count
        self._recent: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._seen: OrderedDict[tuple[str, str | None, str], None] = OrderedDict()
        self.total = 0

    def add(self, rows: Iterable[RejectedRow]) -> None:
        """Log, count and keep each row not seen before."""
        for row in rows:
            key = (row.feed, row.id, row.reason)
            if key in self._seen:
                continue
            self._seen[key] = None
            if len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)
            self.total += 1
            log.warning("servicetitan_row_rejected", feed=row.feed, id=row.id, reason=row.reason)
            if self._count is not None:
                self._count(row.feed)
            at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            self._recent.append({"feed": row.feed, "id": row.id, "reason": row.reason, "at": at})

    def recent(self) -> list[dict[str, Any]]:
        """The last few, newest first."""
        return list(reversed(self._recent))
