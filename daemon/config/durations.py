"""Durations as the configuration writes them: seconds as numbers, or `15s`, `10m`, `1h30m`, `250ms`."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
# Units in descending order, each at most once, so that "1h30m" reads one way only; `m(?!s)` keeps
# minutes apart from milliseconds.
_DURATION = re.compile(rf"^(?:{_NUMBER}d)?(?:{_NUMBER}h)?(?:{_NUMBER}m(?!s))?(?:{_NUMBER}s)?(?:{_NUMBER}ms)?$")
_SECONDS_PER_UNIT = (86400.0, 3600.0, 60.0, 1.0, 0.001)

DURATION_HINT = "a duration like 15s, 10m, 1h or a number of seconds"


def parse_duration(value: object) -> timedelta:
    """`value` (seconds as a number or numeric text, or text like `1h30m`) as a timedelta, else ValueError."""
    if isinstance(value, bool):  # bool is an int subclass; `true` is never a duration
        raise ValueError(DURATION_HINT)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip())
    else:
        raise ValueError(DURATION_HINT)
    if not math.isfinite(seconds):
        raise ValueError(DURATION_HINT)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError("a duration shorter than 999999999 days") from None


def _parse_text(text: str) -> float:
    try:
        return float(text) if re.fullmatch(_NUMBER, text) else _parse_units(text)
    except ValueError:
        raise ValueError(DURATION_HINT) from None


def _parse_units(text: str) -> float:
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(DURATION_HINT)
    return sum(float(part) * unit for part, unit in zip(match.groups(), _SECONDS_PER_UNIT, strict=True) if part)
