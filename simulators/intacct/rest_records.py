"""Applying REST create and update bodies to the shared company, one record at a time.

A record's answer is ``(status, reference)`` on success or ``(status, error)`` on refusal; the
company's own rules (ProjectRefused) become REST statuses: duplicate id → the configured duplicate
status, a missing record → 404, anything else → 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulators.intacct.projects import Project, ProjectRefused
from simulators.intacct.rest_query import CATEGORY_FROM_REST, field_value
from simulators.intacct.rest_state import RestState

PROJECT_HREF = "/objects/projects/project/"
_WRITABLE = {"id", "name", "category", "status", "parent", "customer", "location"}


@dataclass(frozen=True)
class RecordError:
    """A refusal of one record."""

    status: int
    code: str
    message: str
    error_id: str
    details: tuple[dict[str, str], ...] = ()


def reference(p: Project) -> dict[str, str]:
    """The object reference a write answers with."""
    return {"key": str(p.recordno), "id": p.project_id, "href": f"{PROJECT_HREF}{p.recordno}"}


def _invalid(target: str, message: str) -> RecordError:
    return RecordError(400, "invalidRequest", "Payload contains errors", "REST-1064",
                       ({"code": "invalidRequest", "message": message, "errorId": "REST-1043", "target": target},))


def _fields(rest: RestState, body: Any, *, create: bool) -> dict[str, str] | RecordError:
    """XML-named fields of the company from a REST body."""
    if not isinstance(body, Mapping):
        return _invalid("/", "a record must be a JSON object")
    fields: dict[str, str] = {}
    for name, value in body.items():
        if name == "key":
            continue
        if name not in _WRITABLE:
            return _invalid(f"/{name}", f"/{name} is not a valid field")
        if name == "location":
            continue  # accepted and not kept: the simulated company has one entity
        if name == "id":
            if not create:
                return _invalid("/id", "/id is read-only")
            fields["PROJECTID"] = str(value or "")
        elif name == "name":
            fields["NAME"] = str(value or "")
        elif name == "category":
            if value not in CATEGORY_FROM_REST:
                return _invalid("/category", f"{value} is not a valid value for category")
            fields["PROJECTCATEGORY"] = CATEGORY_FROM_REST[value]
        elif name == "status":
            if value not in ("active", "inactive"):
                return _invalid("/status", f"{value} is not a valid value for status")
            fields["STATUS"] = value
        else:
            resolved = _reference(rest, name, value, create=create)
            if isinstance(resolved, RecordError):
                return resolved
            fields["PARENTID" if name == "parent" else "CUSTOMERID"] = resolved
    return fields


def _reference(rest: RestState, name: str, value: Any, *, create: bool) -> str | RecordError:
    """A reference's id, or "" to clear it (in the forms the options accept)."""
    form = rest.options.clear_reference
    if value is None:
        return "" if form in ("any", "null") and not create else _invalid(f"/{name}", f"/{name} cannot be null")
    if not isinstance(value, Mapping) or not set(value) <= {"id", "key"} or not value:
        return _invalid(f"/{name}", f"/{name} must be an object with id or key")
    if "id" in value and value["id"] is not None:
        if value["id"] == "":
            return RecordError(422, "invalidRequest", f"The {name} id cannot be empty", "REST-1090")
        return str(value["id"])
    if "key" in value and value["key"] is not None:
        if name == "customer":
            return str(value["key"])  # customers are seeded by id; the simulator uses the id as key
        target = rest.by_key(str(value["key"]))
        if target is None:
            return RecordError(422, "operationFailed", f"Invalid {name} key {value['key']}", "PJ-0001")
        return target.project_id
    # Every value is null: a clear, if this form clears.
    nulls = "id_null" if "id" in value else "key_null"
    if create or form not in ("any", nulls):
        return _invalid(f"/{name}", f"/{name} has no id or key")
    return ""


def _refused(rest: RestState, exc: ProjectRefused, action: str) -> RecordError:
    details = tuple({"code": "operationFailed", "message": e.description2 or e.errorno, "errorId": e.errorno}
                    for e in exc.errors)
    message = f"{action} request on objects/projects/project was unsuccessful"
    if exc.duplicate:
        return RecordError(rest.options.duplicate_status, "duplicateRecord", message, "REST-7001", details)
    if exc.errors and exc.errors[0].errorno.startswith("Cannot update non-existing"):
        return RecordError(404, "notFound", "Specified resource does not exist", "REST-1005", details)
    return RecordError(422, "operationFailed", message, "REST-7001", details)


def create(rest: RestState, body: Any) -> tuple[int, dict[str, str] | RecordError]:
    """Create one project."""
    company = rest.company
    company.stats.functions["create"] += 1
    fields = _fields(rest, body, create=True)
    if isinstance(fields, RecordError):
        company.stats.refused_functions += 1
        return fields.status, fields
    if rest.options.location_required and not (isinstance(body, Mapping) and body.get("location")):
        company.stats.refused_functions += 1
        return 422, RecordError(422, "operationFailed", "POST request on objects/projects/project was unsuccessful",
                                "REST-7001", ({"code": "requiredField", "message": "Location is required",
                                               "errorId": "PJ-0002"},))
    for required, name in (("NAME", "name"), ("PROJECTCATEGORY", "category")):
        if required not in fields:
            company.stats.refused_functions += 1
            return 400, _invalid(f"/{name}", f"{name} is required")
    try:
        project = company.projects.create(fields, company.customers)
    except ProjectRefused as exc:
        company.stats.refused_functions += 1
        if exc.duplicate:
            company.stats.duplicate_create_attempts += 1
        error = _refused(rest, exc, "POST")
        return error.status, error
    company.stats.creates_applied += 1
    return 201, reference(project)


def update(rest: RestState, key: str | None, body: Any) -> tuple[int, dict[str, str] | RecordError]:
    """Update one project by its record key."""
    company = rest.company
    company.stats.functions["update"] += 1
    project = rest.by_key(key) if key else None
    if project is None:
        company.stats.refused_functions += 1
        return 404, RecordError(404, "notFound", f"projects/project with key {key} could not be found", "REST-1005")
    fields = _fields(rest, body, create=False)
    if isinstance(fields, RecordError):
        company.stats.refused_functions += 1
        return fields.status, fields
    try:
        project = company.projects.update(project.project_id, fields, company.customers)
    except ProjectRefused as exc:
        company.stats.refused_functions += 1
        error = _refused(rest, exc, "PATCH")
        return error.status, error
    company.stats.updates_applied += 1
    return 200, reference(project)


def get(rest: RestState, p: Project) -> dict[str, Any]:
    """The nested object ``GET /objects/projects/project/{key}`` answers (unset references: all null)."""
    parent = rest.company.projects.get(p.parent_id) if p.parent_id else None
    return {
        "key": str(p.recordno), "id": p.project_id, "name": p.name,
        "category": field_value(p, "category"), "status": p.status,
        "parent": ({"key": str(parent.recordno), "id": parent.project_id, "name": parent.name,
                    "href": f"{PROJECT_HREF}{parent.recordno}"} if parent else {"key": None, "id": p.parent_id}),
        "customer": ({"key": p.customer_id, "id": p.customer_id, "name": rest.company.customers.get(p.customer_id),
                      "href": f"/objects/accounts-receivable/customer/{p.customer_id}"}
                     if p.customer_id else {"key": None, "id": None}),
        "audit": {"createdDateTime": field_value(p, "audit.createdDateTime"),
                  "modifiedDateTime": field_value(p, "audit.modifiedDateTime")},
        "entity": {"key": None, "id": None, "name": None},
        "href": f"{PROJECT_HREF}{p.recordno}",
    }
