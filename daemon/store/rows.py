"""Typed rows at the store's boundary: asyncpg records never leave `daemon/store.py`."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from statemachine import Desired, State


class Row(Protocol):
    """What the store hands over: any mapping-like database row."""

    def __getitem__(self, key: str) -> Any: ...


@dataclass(frozen=True, order=True)
class RecordKey:
    """A record's identity within a tenant."""

    kind: str
    st_id: int

    def __str__(self) -> str:
        return f"{self.kind}/{self.st_id}"


@dataclass(frozen=True)
class RecordUpsert:
    """What ServiceTitan says about one job or project, with the Intacct fields derived from it."""

    kind: str
    st_id: int
    number: str | None
    name: str | None
    customer_id: int | None
    customer_name: str | None
    project_id: int | None
    active: bool
    created_on: datetime | None
    modified_on: datetime | None
    desired: Desired
    priority: int = 0

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.kind, self.st_id)


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    return json.loads(value)


@dataclass(frozen=True)
class RecordError:
    """Why a request failed: a record's `last_error`, a history entry's, a connection's.

    Built where a failure enters the daemon (`daemon.sync.health.safe_error`, a function's error
    fields, a parent's verdict); stored and served as the JSON object of `as_json`, whose keys are the
    adapters' (and, for a job failed for its parent, that parent's id and error).
    """

    error_class: str  # connection | transient | permanent | parent
    description: str | None
    errorno: str | None = None
    description2: str | None = None
    correction: str | None = None
    parent: str | None = None  # a job failed for its parent project: that parent's PROJECTID
    parent_error: RecordError | None = None  # and the parent's own error

    @classmethod
    def from_json(cls, value: Any) -> RecordError | None:
        """From the stored (or adapter-built) JSON object; None for none."""
        data = _json(value)
        if not data:
            return None
        return cls(data.get("class") or "transient", data.get("description"), data.get("errorno"),
                   data.get("description2"), data.get("correction"), data.get("parent"),
                   cls.from_json(data.get("parent_error")))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class": self.error_class, "errorno": self.errorno, "description": self.description,
                               "description2": self.description2, "correction": self.correction}
        if self.parent is not None:
            out["parent"] = self.parent
            out["parent_error"] = error_json(self.parent_error)
        return out

    def text(self) -> str | None:
        """The error as one readable line: the service's number and its own words."""
        parts = (self.errorno, self.description, self.description2, self.correction)
        return " ".join(str(p) for p in parts if p) or None


def error_json(error: RecordError | None) -> dict[str, Any] | None:
    return None if error is None else error.as_json()


@dataclass(frozen=True)
class Record:
    """One tracked ST job or project and its Intacct bookkeeping."""

    kind: str
    st_id: int
    state: State
    st_number: str | None
    st_name: str | None
    st_customer_id: int | None
    st_customer_name: str | None
    st_project_id: int | None
    st_active: bool
    st_created_on: datetime | None
    st_modified_on: datetime | None
    desired: dict[str, str | None]
    desired_hash: str
    intacct_project_id: str
    parent_project_id: str | None
    synced_hash: str | None
    synced_fields: dict[str, str | None] | None
    intacct_record_no: int | None
    attempts: int
    next_attempt_at: datetime | None
    priority: int
    verify_first: bool
    last_error: RecordError | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    claim_id: uuid.UUID | None
    intacct_confirmed: bool  # Intacct created or was found to hold `intacct_project_id`: it is fixed
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> Record:
        values = {name: row[name] for name in cls.__dataclass_fields__ if name != "state"}
        values["desired"] = _json(row["desired"])
        values["synced_fields"] = _json(row["synced_fields"])
        values["last_error"] = RecordError.from_json(row["last_error"])
        return cls(state=State(row["state"]), **values)

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.kind, self.st_id)

    @property
    def fixed_id(self) -> str | None:
        """The PROJECTID Intacct has for the record (fixed), None while it is not in Intacct yet."""
        return self.intacct_project_id if self.intacct_confirmed else None

    @property
    def desired_project(self) -> Desired:
        return Desired.from_fields(self.desired)

    @property
    def up_to_date(self) -> bool:
        """Synced, and Intacct holds exactly the current desired fields."""
        return self.state is State.SYNCED and self.synced_hash == self.desired_hash

    def public(self) -> dict[str, Any]:
        """The record as the HTTP API shows it (`GET /v1/records/{kind}/{id}`)."""
        return {
            "kind": self.kind,
            "id": self.st_id,
            "state": self.state.value,
            "intacct_project_id": self.intacct_project_id,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_error": error_json(self.last_error),
            "desired": {k: self.desired.get(k) for k in ("PROJECTID", "NAME", "PARENTID", "CUSTOMERID")},
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    from_state: str | None
    to_state: str
    reason: str
    error: RecordError | None

    def public(self) -> dict[str, Any]:
        return {"at": iso(self.at), "from": self.from_state, "to": self.to_state, "reason": self.reason,
                "error": error_json(self.error)}


@dataclass(frozen=True)
class Synced:
    """A claimed record that Intacct now holds as `fields` (the claim's desired fields)."""

    key: RecordKey
    sent_hash: str
    fields: dict[str, str | None]
    record_no: int | None
    reason: str = "synced"
    in_intacct: bool = True  # False: settled without Intacct holding it (inactive, never created)


@dataclass(frozen=True)
class Finished:
    """Any other end of a claim: retry later, failed, blocked, or released unused."""

    key: RecordKey
    to_state: State
    reason: str
    sent_hash: str
    error: RecordError | None = None
    delay_s: float | None = None
    refund_attempt: bool = False
    verify_first: bool = False


@dataclass(frozen=True)
class Requeue:
    """A record to send again although ServiceTitan did not change (Intacct drifted)."""

    key: RecordKey
    actual: dict[str, str | None] | None = None  # Intacct's fields as read; None: absent there
    was_read: bool = False


@dataclass(frozen=True)
class UpsertResult:
    inserted: list[RecordKey] = field(default_factory=list)
    requeued: list[RecordKey] = field(default_factory=list)
    updated: list[RecordKey] = field(default_factory=list)
    ignored: list[RecordKey] = field(default_factory=list)

    @property
    def enqueued(self) -> int:
        return len(self.inserted) + len(self.requeued)


@dataclass(frozen=True)
class Transition:
    """One record moving from one state to another (logged, counted, and awaited by /v1/ensure)."""

    key: RecordKey
    from_state: str | None
    to_state: str
    reason: str
    error: RecordError | None = None


@dataclass(frozen=True)
class TenantSettingsState:
    auto_sync_on: bool
    activated_at: datetime | None


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with Z, as the API shows times."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
