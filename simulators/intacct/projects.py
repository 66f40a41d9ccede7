"""The simulated company's PROJECT table and the rules Intacct enforces on it.

Lookups by PROJECTID are O(1); the dict keeps creation order, which is RECORDNO order, so a query
ordered by RECORDNO needs no sort. A query's matching rows are cached per (condition, order) until
the next write, so paging through 100,000 rows filters them once, not once per page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

FIELDS: tuple[str, ...] = ("RECORDNO", "PROJECTID", "NAME", "PROJECTCATEGORY", "PARENTID", "CUSTOMERID", "STATUS")
WRITABLE: tuple[str, ...] = FIELDS[1:]
# Assumed maximum lengths (Intacct does not publish them for PROJECT; 20 is its usual ID width).
MAX_LENGTHS: Mapping[str, int] = {
    "PROJECTID": 20,
    "NAME": 200,
    "PROJECTCATEGORY": 80,
    "PARENTID": 20,
    "CUSTOMERID": 20,
}
STATUSES = ("active", "inactive")
GENERIC_ERRORNO = "BL01001973"
DUPLICATE_ERRORNO = "BL34000061"


@dataclass(frozen=True)
class SimError:
    """One ``<error>`` the simulator answers with."""

    errorno: str
    description: str = ""
    description2: str = ""
    correction: str = ""


class ProjectRefused(Exception):
    """A create or update the company refuses; ``errors`` go into the result's ``<errormessage>``."""

    def __init__(self, errors: list[SimError], *, duplicate: bool = False) -> None:
        super().__init__("; ".join(e.description2 or e.errorno for e in errors))
        self.errors = errors
        self.duplicate = duplicate


@dataclass(slots=True)
class Project:
    """One PROJECT row."""

    recordno: int
    project_id: str
    name: str
    category: str
    parent_id: str | None
    customer_id: str | None
    status: str
    # Intacct's audit fields (set by the system, read-only); the control API shows them so that
    # benchmarks measure when a record really appeared, to the microsecond.
    when_created: float = 0.0
    when_modified: float = 0.0

    def get(self, field: str) -> str | None:
        """A field's value as Intacct renders it (None for an empty field or an unknown name)."""
        if field == "RECORDNO":
            return str(self.recordno)
        attribute = _ATTRIBUTES.get(field)
        return None if attribute is None else getattr(self, attribute)

    def as_dict(self) -> dict[str, str | int | None]:
        """The row with upper-case Intacct field names, for the control API."""
        return {
            "RECORDNO": self.recordno,
            "PROJECTID": self.project_id,
            "NAME": self.name,
            "PROJECTCATEGORY": self.category,
            "PARENTID": self.parent_id,
            "CUSTOMERID": self.customer_id,
            "STATUS": self.status,
            "WHENCREATED": _iso(self.when_created),
            "WHENMODIFIED": _iso(self.when_modified),
        }


def _iso(epoch: float) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z") if epoch else None


_ATTRIBUTES = {
    "PROJECTID": "project_id",
    "NAME": "name",
    "PROJECTCATEGORY": "category",
    "PARENTID": "parent_id",
    "CUSTOMERID": "customer_id",
    "STATUS": "status",
}
Predicate = Callable[[Project], bool]


def like_to_regex(pattern: str, *, case_insensitive: bool = False) -> re.Pattern[str]:
    """An SQL ``like`` pattern (``%`` any run, ``_`` one character) as a compiled regex."""
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def _trailer(action: str) -> SimError:
    return SimError(GENERIC_ERRORNO, description2=f"Could not {action} project record!")


def _refuse(reason: str, action: str, correction: str = "") -> ProjectRefused:
    return ProjectRefused([SimError(GENERIC_ERRORNO, description2=reason, correction=correction), _trailer(action)])


class ProjectStore:
    """PROJECT rows by PROJECTID, in RECORDNO order."""

    def __init__(self) -> None:
        self.by_id: dict[str, Project] = {}
        self._next_recordno = 1
        self._version = 0
        self._cache: tuple[object, int, list[Project]] | None = None

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[Project]:
        return iter(self.by_id.values())

    @property
    def version(self) -> int:
        """Changes with every write, so that indexes built over the rows know when to rebuild."""
        return self._version

    def get(self, project_id: str) -> Project | None:
        """The project with this PROJECTID, if any."""
        return self.by_id.get(project_id)

    def clear(self) -> None:
        """Drop every project; RECORDNOs start again at 1."""
        self.by_id.clear()
        self._next_recordno = 1
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._cache = None

    # -- rules ---------------------------------------------------------------------------------

    def _check(self, fields: Mapping[str, str], customers: Container[str], action: str) -> None:
        unknown = [name for name in fields if name not in WRITABLE]
        if unknown:
            raise _refuse(f"Field '{unknown[0]}' is not supported on PROJECT by this simulator.", action)
        for name, limit in MAX_LENGTHS.items():
            value = fields.get(name)
            if value is not None and len(value) > limit:
                raise _refuse(
                    f"The value of {name} is too long: {len(value)} characters, at most {limit} allowed.",
                    action,
                    "Shorten the value.",
                )
        for name in ("NAME", "PROJECTCATEGORY"):
            if name in fields and not fields[name].strip():
                raise _refuse(f"Required field {name} is missing for Project.", action)
        status = fields.get("STATUS")
        if status is not None and status not in STATUSES:
            raise _refuse(f"Invalid STATUS '{status}'. Valid values are: active, inactive.", action)
        customer = fields.get("CUSTOMERID")
        if customer and customer not in customers:
            raise _refuse(f"Customer '{customer}' specified is not valid.", action)
        parent = fields.get("PARENTID")
        if parent and parent not in self.by_id:
            raise _refuse(f"Invalid Parent '{parent}' specified.", action)

    def create(self, fields: Mapping[str, str], customers: Container[str]) -> Project:
        """Insert a project; raises ProjectRefused as Intacct would refuse it."""
        project_id = fields.get("PROJECTID", "")
        if not project_id.strip():
            raise _refuse("Required field PROJECTID is missing for Project.", "create")
        # Checked first so that a resent create always learns that its project exists.
        if project_id in self.by_id:
            raise ProjectRefused(
                [
                    SimError(
                        DUPLICATE_ERRORNO,
                        description2=f"Another Project with the given value(s) {project_id}  already exists",
                        correction="Use a unique value instead.",
                    ),
                    _trailer("create"),
                    SimError(GENERIC_ERRORNO, description2="Error while saving the Project info"),
                ],
                duplicate=True,
            )
        for name in ("NAME", "PROJECTCATEGORY"):
            if name not in fields:
                raise _refuse(f"Required field {name} is missing for Project.", "create")
        self._check(fields, customers, "create")
        if fields.get("PARENTID") == project_id:
            raise _refuse("A project cannot be its own parent.", "create")
        project = Project(
            recordno=self._next_recordno,
            project_id=project_id,
            name=fields["NAME"],
            category=fields["PROJECTCATEGORY"],
            parent_id=fields.get("PARENTID") or None,
            customer_id=fields.get("CUSTOMERID") or None,
            status=fields.get("STATUS") or "active",
            when_created=time.time(),
        )
        project.when_modified = project.when_created
        self._next_recordno += 1
        self.by_id[project_id] = project
        self._changed()
        return project

    def update(self, project_id: str, fields: Mapping[str, str], customers: Container[str]) -> Project:
        """Change the given fields; an empty value clears the field."""
        project = self.by_id.get(project_id)
        if project is None:
            raise ProjectRefused([SimError(f"Cannot update non-existing PROJECT with PROJECTID={project_id}.")])
        if "STATUS" in fields and not fields["STATUS"]:
            raise _refuse("Invalid STATUS ''. Valid values are: active, inactive.", "update")
        self._check(fields, customers, "update")
        parent = fields.get("PARENTID")
        if parent and self._would_cycle(project_id, parent):
            raise _refuse(
                f"Project '{project_id}' cannot have '{parent}' as its parent: it would be a cycle.", "update"
            )
        if "NAME" in fields:
            project.name = fields["NAME"]
        if "PROJECTCATEGORY" in fields:
            project.category = fields["PROJECTCATEGORY"]
        if "PARENTID" in fields:
            project.parent_id = fields["PARENTID"] or None
        if "CUSTOMERID" in fields:
            project.customer_id = fields["CUSTOMERID"] or None
        if "STATUS" in fields:
            project.status = fields["STATUS"]
        project.when_modified = time.time()
        self._changed()
        return project

    def _would_cycle(self, project_id: str, parent_id: str) -> bool:
        seen: set[str] = set()
        current: str | None = parent_id
        while current is not None and current not in seen:
            if current == project_id:
                return True
            seen.add(current)
            row = self.by_id.get(current)
            current = row.parent_id if row is not None else None
        return False

    def delete(self, project_id: str) -> bool:
        """Remove a project (control API only: drift); children keep their PARENTID."""
        if self.by_id.pop(project_id, None) is None:
            return False
        self._changed()
        return True

    # -- queries -------------------------------------------------------------------------------

    def select(self, key: object, predicate: Predicate | None, order: list[tuple[str, bool]]) -> list[Project]:
        """All rows matching ``predicate`` in ``order``; ``key`` identifies both for the cache."""
        cache_key = (key, tuple(order))
        if self._cache is not None and self._cache[0] == cache_key and self._cache[1] == self._version:
            return self._cache[2]
        rows = list(self.by_id.values()) if predicate is None else [p for p in self.by_id.values() if predicate(p)]
        # The dict's order is RECORDNO ascending: a trailing RECORDNO ascending key needs no sort.
        natural = True
        for field, ascending in reversed(order):
            if field == "RECORDNO" and ascending and natural:
                continue
            rows.sort(key=_sort_key(field), reverse=not ascending)
            natural = False
        self._cache = (cache_key, self._version, rows)
        return rows


def _sort_key(field: str) -> Callable[[Project], int | str]:
    if field == "RECORDNO":
        return lambda p: p.recordno
    return lambda p: p.get(field) or ""
