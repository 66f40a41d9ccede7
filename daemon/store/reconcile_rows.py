"""The rows of a reconciliation: classes, exceptions and stored runs.

Rows of the reconcile_* tables become these frozen dataclasses at the store's boundary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from daemon.store.rows import RecordError, Row, iso
from statemachine import State


class Category(StrEnum):
    """What a reconciliation found for one record (`class` in the Contract; a keyword in Python)."""

    MATCHED = "matched"
    MISSING = "missing_in_intacct"
    NAME = "name_mismatch"
    PARENT = "parent_mismatch"
    CUSTOMER = "customer_mismatch"
    ORPHAN = "orphan_in_intacct"
    FAILED = "failed"
    BLOCKED = "blocked"
    OUTSIDE = "outside_scope"


# The order of the report: what needs a person first, what is merely counted last.
CATEGORY_ORDER: tuple[Category, ...] = (
    Category.FAILED, Category.BLOCKED, Category.MISSING, Category.PARENT, Category.CUSTOMER, Category.NAME,
    Category.ORPHAN, Category.OUTSIDE, Category.MATCHED,
)
# Every class but these is an exception: `matched` is the goal, and `outside_scope` is the documented
# effect of the activation time (counted, with a hint to backfill), not something that went wrong.
NOT_EXCEPTIONS = frozenset({Category.MATCHED, Category.OUTSIDE})
DRIFT = frozenset({Category.MISSING, Category.NAME, Category.PARENT, Category.CUSTOMER})


@dataclass(frozen=True, slots=True)
class Finding:
    """One exception: a record (or an Intacct project) and what was done about it."""

    category: Category
    kind: str | None  # job | project; None for an orphan (only Intacct knows it)
    st_id: int | None
    st_number: str | None
    st_name: str | None  # the NAME ServiceTitan says the Intacct project should have
    intacct_project_id: str | None
    intacct_name: str | None  # the NAME Intacct holds (None: absent)
    detail: str
    action: str
    needs_attention: bool  # nothing was queued to repair it: a person must look
    since: datetime | None = None

    @classmethod
    def from_row(cls, row: Row) -> Finding:
        return cls(
            category=Category(row["class"]), kind=row["kind"], st_id=row["st_id"], st_number=row["st_number"],
            st_name=row["st_name"], intacct_project_id=row["intacct_project_id"], intacct_name=row["intacct_name"],
            detail=row["detail"], action=row["action"], needs_attention=row["needs_attention"], since=row["since"],
        )

    @property
    def identity(self) -> tuple[str, str | None, int | None, str | None]:
        """What makes "the same exception" in two runs (its age carries over)."""
        return (self.category.value, self.kind, self.st_id, None if self.st_id is not None else self.intacct_project_id)

    def public(self) -> dict[str, Any]:
        return {
            "class": self.category.value, "kind": self.kind, "servicetitan_id": self.st_id,
            "servicetitan_number": self.st_number, "servicetitan_name": self.st_name,
            "intacct_project_id": self.intacct_project_id, "intacct_name": self.intacct_name,
            "detail": self.detail, "action": self.action, "needs_attention": self.needs_attention,
            "since": iso(self.since),
        }


@dataclass(frozen=True, slots=True)
class Tracked:
    """What a reconciliation needs of a tracked record."""

    st_id: int
    state: State
    customer_id: int | None
    customer_name: str | None
    active: bool
    desired_hash: str
    intacct_project_id: str
    last_error: RecordError | None
    state_changed_at: datetime
    intacct_confirmed: bool = False  # Intacct has `intacct_project_id`: the record is compared under it

    @property
    def fixed_id(self) -> str | None:
        """The PROJECTID the record keeps whatever the templates render now (None: not in Intacct yet)."""
        return self.intacct_project_id if self.intacct_confirmed else None

    @classmethod
    def from_row(cls, row: Row) -> Tracked:
        return cls(
            st_id=row["st_id"], state=State(row["state"]), customer_id=row["st_customer_id"],
            customer_name=row["st_customer_name"], active=row["st_active"], desired_hash=row["desired_hash"],
            intacct_project_id=row["intacct_project_id"],
            last_error=RecordError.from_json(row["last_error"]),
            state_changed_at=row["state_changed_at"], intacct_confirmed=bool(row["intacct_confirmed"]),
        )


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded)


@dataclass(frozen=True)
class RunRecord:
    """A stored reconciliation run."""

    id: int
    status: str  # running | done | failed
    trigger: str
    scope: str
    repair: bool
    period_start: datetime | None
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    exceptions: int
    timings: dict[str, float]
    error: str | None
    report_sent_at: datetime | None
    report_error: str | None
    summary: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row) -> RunRecord:
        return cls(
            id=row["id"], status=row["status"], trigger=row["trigger"], scope=row["scope"], repair=row["repair"],
            period_start=row["period_start"], started_at=row["started_at"], finished_at=row["finished_at"],
            counts={k: int(v) for k, v in _json(row["counts"]).items()}, exceptions=row["exceptions"],
            timings={k: float(v) for k, v in _json(row["timings"]).items()}, error=row["error"],
            report_sent_at=row["report_sent_at"], report_error=row["report_error"], summary=_json(row["summary"]),
        )

    def public(self) -> dict[str, Any]:
        """The run as `/v1/reconcile/latest` shows it (without its exceptions)."""
        return {
            "id": self.id, "status": self.status, "trigger": self.trigger, "scope": self.scope,
            "repair": self.repair, "period_start": iso(self.period_start), "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at), "counts": self.counts, "exceptions": self.exceptions,
            "remaining": int(self.summary.get("remaining", 0)), "actions": self.summary.get("actions", {}),
            "outside_scope": self.summary.get("outside_scope"), "pages": self.summary.get("pages", {}),
            "records_read": self.summary.get("records_read", {}),
            "timings": self.timings, "error": self.error,
            "report": {"sent_at": iso(self.report_sent_at), "error": self.report_error},
        }


@dataclass(frozen=True, slots=True)
class ReportSent:
    """What the last emailed report listed (report.send: on-change compares with it)."""

    fingerprint: str
    exceptions: int
    run_id: int | None
    sent_at: datetime
    digest_on: date | None  # the local day of the last daily digest
