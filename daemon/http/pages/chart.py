"""The overview's chart: records synced and failed per hour over the last 24 hours.

Only geometry is computed here (bars, ticks, labels as numbers and short strings); the SVG markup is
in the template, so that every value is escaped by Jinja like the rest of the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from statemachine import State

HOURS = 24
WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 14, 34  # room for the y labels and the hour labels
SYNCED, FAILED = State.SYNCED.value, State.FAILED.value
SERIES = (SYNCED, FAILED)


@dataclass(frozen=True)
class Bar:
    series: str
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # "14:00–15:00: 12 synced"


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    totals: Mapping[str, int]
    hours: tuple[tuple[str, int, int], ...]  # (hour label, synced, failed) for the table twin

    @property
    def summary(self) -> str:
        return (f"Last 24 hours: {self.totals[SYNCED]:,} synced, {self.totals[FAILED]:,} failed "
                f"(per hour, oldest hour on the left).")


def nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10ⁿ) that divides 0..top into at most `ticks` intervals."""
    raw = max(1.0, top / ticks)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= raw:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def build(counts: Mapping[tuple[datetime, str], int], now: datetime,
          hour_label: Callable[[datetime], str]) -> Chart:
    """The chart of `counts` ((hour start, series) → records) for the 24 hours ending with `now`'s hour.

    `hour_label` names an hour start as the reader's clock shows it (report.timezone).
    """
    last = now.replace(minute=0, second=0, microsecond=0)
    starts = [last - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
    per_hour = [{s: int(counts.get((h, s), 0)) for s in SERIES} for h in starts]
    top = max((v for hour in per_hour for v in hour.values()), default=0)
    step = nice_step(top)
    scale_top = max(step, -(-top // step) * step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / HOURS
    bar_w = slot * 0.38
    bars: list[Bar] = []
    rows: list[tuple[str, int, int]] = []
    for i, (start, hour) in enumerate(zip(starts, per_hour, strict=True)):
        span = f"{hour_label(start)}–{hour_label(start + timedelta(hours=1))}"
        rows.append((span, hour[SYNCED], hour[FAILED]))
        for j, series in enumerate(SERIES):
            value = hour[series]
            height = plot_h * value / scale_top
            x = LEFT + i * slot + slot * 0.1 + j * bar_w
            bars.append(Bar(series, round(x, 1), round(TOP + plot_h - height, 1), round(bar_w, 1),
                            round(height, 1), value, f"{span}: {value:,} {series}"))
    y_ticks = tuple(Tick(round(TOP + plot_h - plot_h * v / scale_top, 1), f"{v:,}")
                    for v in range(0, scale_top + 1, step))
    x_ticks = tuple(Tick(round(LEFT + i * slot + slot / 2, 1), hour_label(starts[i]))
                    for i in range(0, HOURS, 3))
    totals = {s: sum(h[s] for h in per_hour) for s in SERIES}
    return Chart(WIDTH, HEIGHT, LEFT, TOP, plot_w, plot_h, tuple(bars), y_ticks, x_ticks, totals, tuple(rows))


class HourCache:
    """The chart's finished hours, kept between requests: only the current hour (and hours not yet seen)
    is read from the history again. An hour counts as finished two minutes after it ends, so that a
    transition stamped just before the hour's end but committed after it is still counted."""

    SETTLE = timedelta(minutes=2)

    def __init__(self) -> None:
        self._hours: dict[datetime, dict[str, int]] = {}

    async def counts(self, now: datetime,
                     fetch: Callable[[datetime], Awaitable[Mapping[tuple[datetime, str], int]]]
                     ) -> dict[tuple[datetime, str], int]:
        """(hour, series) → count for the chart's 24 hours ending with `now`'s hour."""
        last = now.replace(minute=0, second=0, microsecond=0)
        starts = [last - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
        self._hours = {h: v for h, v in self._hours.items() if h >= starts[0]}
        missing = [h for h in starts if h not in self._hours]
        fetched = await fetch(missing[0]) if missing else {}
        for hour in missing:
            values = {s: int(fetched.get((hour, s), 0)) for s in SERIES}
            if hour + timedelta(hours=1) + self.SETTLE <= now:
                self._hours[hour] = values
        result = {(h, s): n for h, v in self._hours.items() for s, n in v.items() if n}
        result.update({k: int(v) for k, v in fetched.items() if k[0] >= starts[0]})
        return result
