"""What a ServiceTitan job or project should look like in Intacct (the README's "Settings")."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from statemachine.naming import clean_name, render
from statemachine.settings import FieldMapping, Settings

KINDS = ("job", "project")


@dataclass(frozen=True)
class ProjectFacts:
    """The ST project values that the Intacct record depends on."""

    id: int
    number: str
    name: str | None
    customer_id: int | None
    customer_name: str | None
    active: bool = True
    # The PROJECTID Intacct already has for it (None: not in Intacct yet). Fixed once there: a
    # template edit or a renumbering in ServiceTitan must not move a record, nor its jobs' PARENTID.
    intacct_project_id: str | None = None


@dataclass(frozen=True)
class JobFacts:
    """The ST job values that the Intacct record depends on."""

    id: int
    number: str
    project_id: int | None
    customer_id: int | None
    customer_name: str | None
    active: bool = True


@dataclass(frozen=True)
class Desired:
    """An Intacct PROJECT as the daemon wants it."""

    project_id: str
    name: str
    category: str
    parent_id: str | None
    customer_id: str | None
    status: str  # "active" | "inactive"

    def fields(self) -> dict[str, str | None]:
        """The record under Intacct's field names."""
        return {
            "PROJECTID": self.project_id,
            "NAME": self.name,
            "PROJECTCATEGORY": self.category,
            "PARENTID": self.parent_id,
            "CUSTOMERID": self.customer_id,
            "STATUS": self.status,
        }

    def digest(self) -> str:
        """A stable hash of the fields, to tell "changed" from "the same again" cheaply."""
        return fields_digest(self.fields())

    @classmethod
    def from_fields(cls, fields: dict[str, str | None]) -> Desired:
        return cls(
            project_id=str(fields["PROJECTID"]),
            name=str(fields["NAME"]),
            category=str(fields["PROJECTCATEGORY"]),
            parent_id=fields.get("PARENTID"),
            customer_id=fields.get("CUSTOMERID"),
            status=str(fields.get("STATUS") or "active"),
        )


def fields_digest(fields: dict[str, str | None]) -> str:
    """sha256 of the canonical JSON of an Intacct field set."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def derivation_key(settings: Settings, mapping: FieldMapping) -> str:
    """A digest of what desired fields are derived from besides ServiceTitan's facts (settings, templates).

    Stored with the records: when it differs from the running configuration's, every record's
    desired fields are derived again.
    """
    return hashlib.sha256(repr((settings, mapping)).encode("utf-8")).hexdigest()[:32]


def project_values(project: ProjectFacts) -> dict[str, object]:
    return {
        "project_id": project.id,
        "project_number": project.number,
        "project_name": project.name,
        "customer_id": project.customer_id,
        "customer_name": project.customer_name,
    }


def project_intacct_id(project: ProjectFacts, mapping: FieldMapping) -> str:
    """The PROJECTID of an ST project: the one Intacct has, else the template's."""
    return project.intacct_project_id or render(mapping.project_project_id, project_values(project))


def _customer_id(customer_id: int | None, customer_name: str | None, settings: Settings,
                 mapping: FieldMapping) -> str | None:
    if not settings.customer_linkage or customer_id is None:
        return None
    return render(mapping.customer_id, {"customer_id": customer_id, "customer_name": customer_name}) or None


def desired_for_project(project: ProjectFacts, settings: Settings, mapping: FieldMapping) -> Desired:
    """The Intacct PROJECT of an ST project (a parent-level project)."""
    values = project_values(project)
    name = clean_name(project.name, mapping.name_max_length) if settings.project_names else ""
    if not name:
        name = clean_name(render(mapping.project_name_fallback, values), mapping.name_max_length)
    project_id = project_intacct_id(project, mapping)
    return Desired(
        project_id=project_id,
        name=name or project_id,
        category=mapping.project_category,
        parent_id=None,
        customer_id=_customer_id(project.customer_id, project.customer_name, settings, mapping),
        status="active" if project.active else "inactive",
    )


def desired_for_job(job: JobFacts, parent: ProjectFacts | None, settings: Settings,
                    mapping: FieldMapping) -> Desired:
    """The Intacct PROJECT of an ST job; `parent` is its ST project when it has one."""
    values: dict[str, object] = {
        "job_id": job.id,
        "job_number": job.number,
        "project_id": job.project_id,
        "customer_id": job.customer_id,
        "customer_name": job.customer_name,
    }
    if parent is not None:
        values["project_number"] = parent.number
        values["project_name"] = parent.name
    project_id = render(mapping.job_project_id, values)
    name = clean_name(render(mapping.job_project_name, values), mapping.name_max_length)
    parent_id = None
    if settings.parent_mapping and job.project_id is not None and parent is not None:
        parent_id = project_intacct_id(parent, mapping)
    return Desired(
        project_id=project_id,
        # A job whose template renders empty (no number, no customer) still needs a NAME.
        name=name or project_id,
        category=mapping.project_category,
        parent_id=parent_id,
        customer_id=_customer_id(job.customer_id, job.customer_name, settings, mapping),
        status="active" if job.active else "inactive",
    )


def changed_fields(desired: dict[str, str | None], actual: dict[str, str | None]) -> dict[str, str | None]:
    """The fields an update must send so that Intacct's `actual` becomes `desired`.

    PROJECTCATEGORY is only set at creation: Intacct does not let it change afterwards. PROJECTID is
    the key and is never updated: two different PROJECTIDs are two different Intacct projects.
    """
    if (desired.get("PROJECTID") or None) != (actual.get("PROJECTID") or None):
        raise ValueError("an update cannot change PROJECTID: compare records of the same PROJECTID")
    out: dict[str, str | None] = {}
    for key in ("NAME", "PARENTID", "CUSTOMERID", "STATUS"):
        want = desired.get(key) or None
        have = actual.get(key) or None
        if want != have:
            out[key] = want
    return out
