"""What one reconciliation compares against, and what it found and did."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from daemon.store import Finding
from statemachine.settings import FieldMapping, Settings


@dataclass(frozen=True)
class RunSettings:
    """What one run compares against: the current settings, mapping and scope."""

    settings: Settings
    mapping: FieldMapping
    scope: str  # activated | all
    activated_at: datetime | None
    repair: bool


@dataclass
class OutsideScope:
    """Records older than the activation time and absent in Intacct (for the backfill hint)."""

    count: int = 0
    oldest_us: int | None = None
    newest_us: int | None = None

    def add(self, changed_us: int) -> None:
        self.count += 1
        self.oldest_us = changed_us if self.oldest_us is None else min(self.oldest_us, changed_us)
        self.newest_us = changed_us if self.newest_us is None else max(self.newest_us, changed_us)


@dataclass
class Outcome:
    """What a run found and did."""

    counts: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    outside: OutsideScope = field(default_factory=OutsideScope)
    timings: dict[str, float] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)  # read per side
    records_read: dict[str, int] = field(default_factory=dict)

    @property
    def exceptions(self) -> int:
        return len(self.findings)

    @property
    def remaining(self) -> int:
        """Exceptions nothing was queued for: a person has to look at them."""
        return needing_attention(self.findings)


def needing_attention(findings: Sequence[Finding]) -> int:
    """How many exceptions nothing was queued for (the command's exit 3, the report's headline)."""
    return sum(1 for f in findings if f.needs_attention)
