"""One tenant's customers, projects and jobs, their change logs, and the control-API mutations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from simulators.servicetitan.records import (
    JOB_STATUSES,
    CustomerRecord,
    JobRecord,
    ProjectRecord,
)
from simulators.servicetitan.timefmt import parse_ticks

__all__ = ["ChangeLog", "InputError", "TenantData", "UnknownRecord"]


class InputError(ValueError):
    """A control-API document the simulator refuses; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownRecord(LookupError):
    """A control-API call names a record the tenant does not have."""


class ChangeLog:
    """Every create and update in order; a record's entry is live while ``record.log_pos`` points at it."""

    __slots__ = ("ids", "ticks")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.ticks: list[int] = []  # wall time of each change, never decreasing (bisect relies on it)

    def append(self, record_id: int, tick: int) -> int:
        """Log a change of ``record_id`` at ``tick``; returns its position."""
        if self.ticks and tick < self.ticks[-1]:
            tick = self.ticks[-1]
        self.ids.append(record_id)
        self.ticks.append(tick)
        return len(self.ids) - 1

    def __len__(self) -> int:
        return len(self.ids)


_CUSTOMER_KEYS = {"id", "name", "type", "active", "createdOn", "modifiedOn", "street", "city", "state", "zip"}
_PROJECT_KEYS = {
    "id", "number", "name", "status", "customerId", "locationId", "businessUnitIds", "summary",
    "createdOn", "modifiedOn", "active",
}  # fmt: skip
_JOB_KEYS = {
    "id", "jobNumber", "projectId", "customerId", "locationId", "businessUnitId", "jobTypeId",
    "jobStatus", "priority", "summary", "createdOn", "modifiedOn", "active", "completedOn",
}  # fmt: skip


class TenantData:
    """The records of one tenant."""

    def __init__(self, tenant_id: int, clock: Callable[[], int]) -> None:
        self.tenant_id = tenant_id
        self.clock = clock
        self.customers: dict[int, CustomerRecord] = {}
        self.projects: dict[int, ProjectRecord] = {}
        self.jobs: dict[int, JobRecord] = {}
        self.job_log = ChangeLog()
        self.project_log = ChangeLog()
        self._next = {"customer": 10_001, "project": 50_001, "job": 100_001}
        self._default_customer: int | None = None
        # Bumped by every change; list queries cache their sorted, filtered id lists per version.
        self.version = 0
        self.query_cache: dict[tuple[Any, ...], list[int]] = {}
        # Raw JSON rows (ids of 5000 digits, of 2^63, rows without fields…) that the next export
        # page of each feed carries once, before its own rows.
        self.hostile_rows: dict[str, list[str]] = {"jobs": [], "projects": []}

    def _changed(self) -> None:
        self.version += 1
        self.query_cache.clear()

    def _new_id(self, kind: str, doc: Mapping[str, Any], existing: Mapping[int, object]) -> int:
        wanted = _int(doc, "id")
        if wanted is None:
            wanted = self._next[kind]
            while wanted in existing:
                wanted += 1
        elif wanted in existing:
            raise InputError("id", f"{kind} {wanted} already exists")
        elif wanted <= 0:
            raise InputError("id", "must be positive")
        self._next[kind] = max(self._next[kind], wanted + 1)
        return wanted

    def _times(self, doc: Mapping[str, Any], nullable_modified: bool = False) -> tuple[int, int | None]:
        now = self.clock()
        created = _time(doc, "createdOn")
        if "modifiedOn" in doc:
            modified = _time(doc, "modifiedOn")
            if modified is None and not nullable_modified:
                raise InputError("modifiedOn", "must not be null")
        else:
            # A record created "in the past" was not modified since.
            modified = created if created is not None else now
        return (created if created is not None else now), modified

    # ---------------------------------------------------------------- customers

    def create_customer(self, doc: Mapping[str, Any]) -> CustomerRecord:
        """Add a customer (id auto-assigned unless given)."""
        _check_keys(doc, _CUSTOMER_KEYS)
        cid = self._new_id("customer", doc, self.customers)
        created, modified = self._times(doc)
        kind = _str(doc, "type") or "Residential"
        if kind not in ("Residential", "Commercial"):
            raise InputError("type", "must be Residential or Commercial")
        record = CustomerRecord(
            id=cid, name=_str(doc, "name") or f"Customer {cid}", type=kind,
            active=_bool(doc, "active", True), created_on=created, modified_on=modified or created,
        )  # fmt: skip
        for name in ("street", "city", "state", "zip"):
            if doc.get(name) is not None:
                setattr(record, name, _str(doc, name))
        self.customers[cid] = record
        self._changed()
        return record

    def update_customer(self, customer_id: int, doc: Mapping[str, Any]) -> CustomerRecord:
        """Rename, retype or (de)activate a customer."""
        _check_keys(doc, _CUSTOMER_KEYS - {"id", "createdOn"})
        record = _get(self.customers, customer_id, "customer")
        if "name" in doc:
            record.name = _str(doc, "name") or ""
        if "active" in doc:
            record.active = _bool(doc, "active", True)
        if "type" in doc:
            record.type = _str(doc, "type") or record.type
        for name in ("street", "city", "state", "zip"):
            if name in doc:
                setattr(record, name, _str(doc, name) or "")
        record.modified_on = _time(doc, "modifiedOn") or self.clock()
        self._changed()
        return record

    def default_customer(self) -> int:
        """The customer given to projects and jobs created without one."""
        if self._default_customer not in self.customers:
            self._default_customer = self.create_customer({"name": "Walk-in Customer"}).id
        assert self._default_customer is not None
        return self._default_customer

    def _customer_ref(self, doc: Mapping[str, Any], fallback: int | None) -> int:
        cid = _int(doc, "customerId")
        if cid is None:
            return fallback if fallback is not None else self.default_customer()
        if cid not in self.customers:
            raise InputError("customerId", f"customer {cid} does not exist")
        return cid

    # ---------------------------------------------------------------- projects

    def create_project(self, doc: Mapping[str, Any]) -> ProjectRecord:
        """Add a project (id and number auto-assigned unless given)."""
        _check_keys(doc, _PROJECT_KEYS)
        pid = self._new_id("project", doc, self.projects)
        customer_id = self._customer_ref(doc, None)
        created, modified = self._times(doc, nullable_modified=True)
        units = doc.get("businessUnitIds") or [1]
        if not isinstance(units, list) or not all(isinstance(u, int) for u in units):
            raise InputError("businessUnitIds", "must be a list of integers")
        record = ProjectRecord(
            id=pid, number=_str(doc, "number") or str(pid), name=_str(doc, "name"),
            status=_str(doc, "status") if "status" in doc else "Not Started",
            customer_id=customer_id, location_id=_int(doc, "locationId") or customer_id + 500_000,
            business_unit_ids=list(units), created_on=created, modified_on=modified,
            active=_bool(doc, "active", True), summary=_str(doc, "summary"),
        )  # fmt: skip
        self.projects[pid] = record
        record.log_pos = self.project_log.append(pid, self.clock())
        self._changed()
        return record

    def update_project(self, project_id: int, doc: Mapping[str, Any]) -> ProjectRecord:
        """Rename, change status or customer, (de)activate a project; logs a change."""
        _check_keys(doc, _PROJECT_KEYS - {"id", "createdOn"})
        record = _get(self.projects, project_id, "project")
        if "name" in doc:
            record.name = _str(doc, "name")
        if "number" in doc:
            record.number = _str(doc, "number") or str(record.id)
        if "status" in doc:
            record.status = _str(doc, "status")
        if "summary" in doc:
            record.summary = _str(doc, "summary")
        if "active" in doc:
            record.active = _bool(doc, "active", True)
        if "customerId" in doc:
            record.customer_id = self._customer_ref(doc, record.customer_id)
        if "locationId" in doc:
            record.location_id = _int(doc, "locationId") or record.location_id
        record.modified_on = _time(doc, "modifiedOn") if "modifiedOn" in doc else self.clock()
        record.log_pos = self.project_log.append(project_id, self.clock())
        self._changed()
        return record

    # ---------------------------------------------------------------- jobs

    def create_job(self, doc: Mapping[str, Any]) -> JobRecord:
        """Add a job (id and number auto-assigned); with ``projectId`` it joins that project's jobIds."""
        _check_keys(doc, _JOB_KEYS)
        project = self._project_ref(doc)
        jid = self._new_id("job", doc, self.jobs)
        customer_id = self._customer_ref(doc, project.customer_id if project else None)
        created, modified = self._times(doc)
        status = _str(doc, "jobStatus") or "Scheduled"
        if status not in JOB_STATUSES:
            raise InputError("jobStatus", f"must be one of {', '.join(JOB_STATUSES)}")
        record = JobRecord(
            id=jid, job_number=_str(doc, "jobNumber") or str(jid),
            project_id=project.id if project else None, customer_id=customer_id,
            location_id=_int(doc, "locationId") or (project.location_id if project else customer_id + 500_000),
            business_unit_id=_int(doc, "businessUnitId") or 1, job_type_id=_int(doc, "jobTypeId") or 1,
            job_status=status, priority=_str(doc, "priority") or "Normal",
            created_on=created, modified_on=modified or created, active=_bool(doc, "active", True),
            summary=_str(doc, "summary"), completed_on=_time(doc, "completedOn"),
        )  # fmt: skip
        self.jobs[jid] = record
        if project is not None:
            project.job_ids.append(jid)
        record.log_pos = self.job_log.append(jid, self.clock())
        self._changed()
        return record

    def update_job(self, job_id: int, doc: Mapping[str, Any]) -> JobRecord:
        """Move a job (``projectId``, null to detach), change status or (de)activate it; logs a change."""
        _check_keys(doc, _JOB_KEYS - {"id", "createdOn"})
        record = _get(self.jobs, job_id, "job")
        if "projectId" in doc:
            target = self._project_ref(doc)
            new_id = target.id if target else None
            if new_id != record.project_id:
                old = self.projects.get(record.project_id) if record.project_id is not None else None
                if old is not None and job_id in old.job_ids:
                    old.job_ids.remove(job_id)
                if target is not None:
                    target.job_ids.append(job_id)
                record.project_id = new_id
        if "jobNumber" in doc:
            record.job_number = _str(doc, "jobNumber") or str(record.id)
        if "jobStatus" in doc:
            status = _str(doc, "jobStatus") or "Scheduled"
            if status not in JOB_STATUSES:
                raise InputError("jobStatus", f"must be one of {', '.join(JOB_STATUSES)}")
            record.job_status = status
        if "active" in doc:
            record.active = _bool(doc, "active", True)
        if "customerId" in doc:
            record.customer_id = self._customer_ref(doc, record.customer_id)
        for key, attr in (("locationId", "location_id"), ("businessUnitId", "business_unit_id")):
            if key in doc:
                setattr(record, attr, _int(doc, key) or getattr(record, attr))
        if "summary" in doc:
            record.summary = _str(doc, "summary")
        if "completedOn" in doc:
            record.completed_on = _time(doc, "completedOn")
        record.modified_on = _time(doc, "modifiedOn") or self.clock()
        record.log_pos = self.job_log.append(job_id, self.clock())
        self._changed()
        return record

    def _project_ref(self, doc: Mapping[str, Any]) -> ProjectRecord | None:
        pid = _int(doc, "projectId")
        if pid is None:
            return None
        project = self.projects.get(pid)
        if project is None:
            raise InputError("projectId", f"project {pid} does not exist")
        return project

    # ---------------------------------------------------------------- bulk and summary

    def bulk(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Create customers, then projects, then jobs; not atomic (stops at the first bad item)."""
        _check_keys(doc, {"customers", "projects", "jobs"})
        created: dict[str, Any] = {}
        for kind, create in (
            ("customers", self.create_customer),
            ("projects", self.create_project),
            ("jobs", self.create_job),
        ):
            items = doc.get(kind) or []
            if not isinstance(items, list):
                raise InputError(kind, "must be a list")
            ids: list[int] = []
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise InputError(f"{kind}[{index}]", "must be an object")
                try:
                    ids.append(create(item).id)
                except InputError as exc:
                    raise InputError(f"{kind}[{index}].{exc.field}", exc.message) from None
            created[kind] = {
                "count": len(ids),
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            }
        return created

    def summary(self) -> dict[str, Any]:
        """Counts of records and change-log entries."""
        return {
            "tenant": self.tenant_id,
            "customers": len(self.customers),
            "projects": len(self.projects),
            "jobs": len(self.jobs),
            "active_projects": sum(1 for p in self.projects.values() if p.active),
            "active_jobs": sum(1 for j in self.jobs.values() if j.active),
            "job_changes": len(self.job_log),
            "project_changes": len(self.project_log),
            "version": self.version,
        }


def _check_keys(doc: Mapping[str, Any], allowed: set[str]) -> None:
    if not isinstance(doc, Mapping):
        raise InputError("body", "must be a JSON object")
    unknown = set(doc) - allowed
    if unknown:
        raise InputError(sorted(unknown)[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _get(records: Mapping[int, Any], record_id: int, kind: str) -> Any:
    record = records.get(record_id)
    if record is None:
        raise UnknownRecord(f"{kind} {record_id} does not exist")
    return record


def _int(doc: Mapping[str, Any], name: str) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(name, "must be an integer")
    return value


def _str(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(name, "must be a string")
    return value


def _bool(doc: Mapping[str, Any], name: str, default: bool) -> bool:
    value = doc.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(name, "must be true or false")
    return value


def _time(doc: Mapping[str, Any], name: str) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(name, "must be an ISO date/time string")
    try:
        return parse_ticks(value)
    except ValueError as exc:
        raise InputError(name, str(exc)) from None
