"""ServiceTitan records as the daemon sees them: frozen dataclasses parsed leniently from JSON.

ServiceTitan's schemas grow new fields often and some "required" fields arrive as null (the
MeltanoLabs tap had to relax several), so parsing ignores unknown fields and tolerates nulls
where a sensible value exists. Only what the daemon cannot work without is refused, with a
``PermanentError`` naming the field: a row without ``id``, or a timestamp that is not a time
(the spec's own examples carry the placeholder ``"string"``; guessing a time for it would put a
wrong ``modifiedOn`` into the ordering of upserts, so it is refused instead).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

from adapters.errors import PermanentError

__all__ = [
    "INT64_MAX",
    "Customer",
    "ExportPage",
    "HugeNumber",
    "Job",
    "Project",
    "RejectedRow",
    "ServiceTitanCredentials",
    "export_start",
    "format_time",
    "parse_time",
]

T = TypeVar("T")

INT64_MAX = 2**63 - 1  # ServiceTitan ids are int64; the store keeps them in bigint columns


class HugeNumber:
    """A JSON integer too long for any id, kept as a short text instead of a (slow, huge) int."""

    __slots__ = ("digits", "text")

    def __init__(self, literal: str) -> None:
        self.digits = len(literal.lstrip("-"))
        self.text = literal[:24] + "…" if len(literal) > 24 else literal

    def __repr__(self) -> str:
        return f"{self.text} ({self.digits} digits)"

    __str__ = __repr__


@dataclass(frozen=True)
class RejectedRow:
    """A row of a ServiceTitan answer that cannot be taken in, and why; the rows around it go on."""

    feed: str  # "jobs", "projects", "customers"
    id: str | None  # the row's id as text (cut short), when it has something that looks like one
    reason: str

# YYYY-MM-DD, optional time with optional fraction of any length, optional Z or +hh:mm offset.
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: str) -> datetime:
    """Parse a ServiceTitan timestamp into an aware UTC datetime (7 digits truncated to µs)."""
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    if len(value) == 28 and value[-1] == "Z" and value[10] == "T" and value[19] == "." and value[20:27].isdigit():
        # ServiceTitan's own form (2021-07-19T20:35:38.2876004Z), read by the C parser: a
        # reconciliation parses hundreds of thousands of these.
        try:
            return datetime.fromisoformat(value[:26]).replace(tzinfo=UTC)
        except ValueError:
            pass
    m = _TIME_RE.match(value.strip())
    if m is None:
        raise ValueError(f"not a timestamp: {value!r}")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz: timezone = UTC
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo=tz)
    return dt.astimezone(UTC)


def format_time(dt: datetime) -> str:
    """Format a datetime the way ServiceTitan writes times: UTC, 7 fractional digits, ``Z``."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def export_start(dt: datetime) -> str:
    """The ``from`` value that starts an export feed at ``dt`` (matched against ``modifiedOn``)."""
    return format_time(dt)


@dataclass(frozen=True)
class ServiceTitanCredentials:
    """Where and how to reach one ServiceTitan tenant; ``repr`` masks the secrets."""

    api_base_url: str
    auth_url: str
    tenant_id: int
    app_key: str = field(repr=False)
    client_id: str
    client_secret: str = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"ServiceTitanCredentials(api_base_url={self.api_base_url!r}, auth_url={self.auth_url!r}, "
            f"tenant_id={self.tenant_id!r}, app_key='***', client_id={self.client_id!r}, client_secret='***')"
        )

    __str__ = __repr__


def _refuse(kind: str, row: Mapping[str, Any], name: str, why: str) -> PermanentError:
    ident = row.get("id") if isinstance(row, Mapping) else None
    known = isinstance(ident, int) and not isinstance(ident, bool) and 1 <= ident <= INT64_MAX
    where = f"{kind} {ident}" if known else kind
    return PermanentError(f"ServiceTitan {where}: field '{name}' {why}")


def _require_id(kind: str, row: Any) -> int:
    if not isinstance(row, Mapping):
        raise PermanentError(f"ServiceTitan {kind} row is not a JSON object")
    value = row.get("id")
    if value is None:
        raise PermanentError(f"ServiceTitan {kind} row without field 'id'")
    got = _as_int(value)
    if got is None:
        raise _refuse(kind, {}, "id", f"is not an integer: {_shown(value)}")
    if not 1 <= got <= INT64_MAX:
        raise _refuse(kind, {}, "id", f"is outside 1…2^63−1: {_shown(value)}")
    return got


def _shown(value: Any) -> str:
    """A value for a message: short, whatever it is."""
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


# Digits of the largest int64; a longer literal is never an id (and int() of thousands is slow).
_MAX_DIGITS = len(str(INT64_MAX))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text.lstrip("-")) <= _MAX_DIGITS and re.fullmatch(r"-?\d+", text):
            return int(text)
    return None


def _opt_int(kind: str, row: Mapping[str, Any], name: str) -> int | None:
    value = row.get(name)
    if value is None:
        return None
    got = _as_int(value)
    if got is None:
        raise _refuse(kind, row, name, f"is not an integer: {_shown(value)}")
    if not -INT64_MAX - 1 <= got <= INT64_MAX:
        raise _refuse(kind, row, name, f"is outside the 64-bit range: {_shown(value)}")
    return got


def _opt_str(kind: str, row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, HugeNumber):
        raise _refuse(kind, row, name, f"is a number of {value.digits} digits")
    return value if isinstance(value, str) else str(value)


def _opt_time(kind: str, row: Mapping[str, Any], name: str) -> datetime | None:
    value = row.get(name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise _refuse(kind, row, name, f"is not a timestamp: {str(value)[:40]!r}") from None


def _times(kind: str, row: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """createdOn and modifiedOn, each standing in for the other when null."""
    created = _opt_time(kind, row, "createdOn")
    modified = _opt_time(kind, row, "modifiedOn")
    if created is None:
        if modified is None:
            raise _refuse(kind, row, "createdOn", "is missing (and so is modifiedOn)")
        return modified, modified
    return created, modified or created


def _active(row: Mapping[str, Any]) -> bool:
    # Only export rows carry `active`; list and get rows describe records that exist.
    value = row.get("active")
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return bool(value)


@dataclass(frozen=True)
class Job:
    """A ServiceTitan job (fields the daemon uses)."""

    id: int
    job_number: str
    project_id: int | None
    customer_id: int | None
    location_id: int | None
    business_unit_id: int | None
    job_status: str | None
    created_on: datetime
    modified_on: datetime
    active: bool = True

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> Job:
        """Build from a job row of a get, list or export answer."""
        ident = _require_id("job", row)
        created, modified = _times("job", row)
        return cls(
            id=ident,
            # A null number would collide in PROJECTID templates; the id is ST's own default number.
            job_number=_opt_str("job", row, "jobNumber") or str(ident),
            project_id=_opt_int("job", row, "projectId"),
            customer_id=_opt_int("job", row, "customerId"),
            location_id=_opt_int("job", row, "locationId"),
            business_unit_id=_opt_int("job", row, "businessUnitId"),
            job_status=_opt_str("job", row, "jobStatus"),
            created_on=created,
            modified_on=modified,
            active=_active(row),
        )


@dataclass(frozen=True)
class Project:
    """A ServiceTitan project (fields the daemon uses)."""

    id: int
    number: str
    name: str | None
    customer_id: int | None
    status: str | None
    created_on: datetime
    modified_on: datetime
    job_ids: tuple[int, ...]
    active: bool = True

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> Project:
        """Build from a project row of a get, list or export answer (null modifiedOn → createdOn)."""
        ident = _require_id("project", row)
        created, modified = _times("project", row)
        raw_jobs = row.get("jobIds") or ()
        if not isinstance(raw_jobs, list | tuple):
            raise _refuse("project", row, "jobIds", "is not a list")
        job_ids: list[int] = []
        for value in raw_jobs:
            got = _as_int(value)
            if got is None:
                raise _refuse("project", row, "jobIds", f"holds a non-integer: {_shown(value)}")
            if not -INT64_MAX - 1 <= got <= INT64_MAX:
                raise _refuse("project", row, "jobIds", f"holds an id outside the 64-bit range: {_shown(value)}")
            job_ids.append(got)
        return cls(
            id=ident,
            number=_opt_str("project", row, "number") or str(ident),
            name=_opt_str("project", row, "name"),
            customer_id=_opt_int("project", row, "customerId"),
            status=_opt_str("project", row, "status"),
            created_on=created,
            modified_on=modified,
            job_ids=tuple(job_ids),
            active=_active(row),
        )


@dataclass(frozen=True)
class Customer:
    """A ServiceTitan customer (only what naming and linkage need)."""

    id: int
    name: str
    active: bool

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> Customer:
        """Build from a customer row of a get or list answer."""
        ident = _require_id("customer", row)
        return cls(id=ident, name=_opt_str("customer", row, "name") or "", active=_active(row))


@dataclass(frozen=True)
class ExportPage(Generic[T]):
    """One page of an export feed: its rows and where the next request continues."""

    rows: list[T]
    continue_from: str
    has_more: bool
    # Rows that could not be taken in (no id, an id out of range…), skipped so that the feed moves on.
    rejected: tuple[RejectedRow, ...] = ()
