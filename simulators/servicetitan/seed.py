"""Realistic demo data: residential and commercial customers, projects and jobs of a contractor."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from simulators.servicetitan.state import SimState
from simulators.servicetitan.timefmt import TICKS_PER_SECOND, format_ticks

__all__ = ["demo_seed", "load_seed_file"]

_FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Robert",
    "Linh",
    "David",
    "Sofia",
    "Michael",
    "Priya",
    "Daniel",
    "Emily",
    "Carlos",
    "Grace",
    "Ahmed",
    "Olivia",
]
_LAST = [
    "Gonzalez",
    "Smith",
    "Johnson",
    "Nguyen",
    "Patel",
    "Williams",
    "Brown",
    "O'Connor",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Kowalski",
    "Lee",
]
_COMPANIES = [
    "Acme Property Management LLC",
    "Riverside Medical Center",
    "Oak Ridge Apartments",
    "Summit Office Park",
    "Blue Harbor Restaurant Group",
    "Northgate Elementary School",
    "Greenfield Logistics Inc.",
    "St. Mary's Parish",
    "Lakeside Senior Living",
    "Pioneer Self Storage",
    "Maple & Main Retail Co.",
    "Harbor View Condominium Association",
]
_SITES = [
    "Riverside Office",
    "Maple Street Duplex",
    "Harbor View Condos",
    "Westfield Mall",
    "Cedar Park Clinic",
    "Downtown Library",
    "Hilltop Warehouse",
    "Elm Street Bakery",
    "Lincoln High Gym",
    "Bayside Hotel",
]
_SYSTEMS = ["HVAC", "Boiler", "Rooftop Unit", "Plumbing", "Electrical Panel", "Water Heater", "Ductwork"]
_WORKS = ["Retrofit", "Replacement", "Install", "Upgrade", "Renovation", "Repair"]
_STREETS = ["Main St", "Oak Ave", "Pine Rd", "Lakeview Dr", "Cedar Ln", "Elm St", "Maple Ave", "Hill Rd"]
_CITIES = [
    ("Springfield", "IL", "62701"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Columbus", "OH", "43004"),
    ("Tampa", "FL", "33601"),
    ("Portland", "OR", "97201"),
]
_JOB_STATUSES = ["Scheduled", "Scheduled", "Dispatched", "InProgress", "Completed", "Completed", "Hold"]
_PROJECT_STATUSES = ["Not Started", "In Progress", "In Progress", "On Hold", "Completed"]

_DAY = 86_400 * TICKS_PER_SECOND


def _customer_name(rng: random.Random, index: int) -> tuple[str, str]:
    if index % 3 == 2:
        return _COMPANIES[(index // 3) % len(_COMPANIES)], "Commercial"
    last = rng.choice(_LAST)
    if index % 3 == 1:
        return f"{last} Residence", "Residential"
    return f"{rng.choice(_FIRST)} {last}", "Residential"


def demo_seed(
    state: SimState,
    tenant_id: int,
    *,
    customers: int = 20,
    projects: int = 8,
    jobs: int = 60,
    now: int | None = None,
    seed: int = 7,
) -> dict[str, Any]:
    """Fill ``tenant_id`` with a month of plausible history before ``now`` (ticks); returns its summary."""
    rng = random.Random(seed)
    tenant = state.tenant(tenant_id)
    now = state.clock() if now is None else now

    def moment(after: int) -> int:
        return rng.randint(after, max(after, now - TICKS_PER_SECOND))

    start = now - 30 * _DAY
    customer_ids: list[int] = []
    for i in range(customers):
        name, kind = _customer_name(rng, i)
        city, region, zip_code = rng.choice(_CITIES)
        created = moment(start - 300 * _DAY)
        customer_ids.append(tenant.create_customer({
            "name": name, "type": kind, "street": f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}",
            "city": city, "state": region, "zip": zip_code, "createdOn": format_ticks(created),
        }).id)  # fmt: skip
    if not customer_ids:
        customer_ids.append(tenant.default_customer())

    project_ids: list[int] = []
    project_created: dict[int, int] = {}
    first_project_number = 1000 + len(tenant.projects) + 1
    for i in range(projects):
        created = moment(start)
        title = f"{rng.choice(_SITES)} {rng.choice(_SYSTEMS)} {rng.choice(_WORKS)}"
        record = tenant.create_project({
            "number": str(first_project_number + i), "name": title, "status": rng.choice(_PROJECT_STATUSES),
            "customerId": rng.choice(customer_ids), "createdOn": format_ticks(created),
            "modifiedOn": format_ticks(moment(created)),
        })  # fmt: skip
        project_ids.append(record.id)
        project_created[record.id] = created

    first_job_number = 24_000 + len(tenant.jobs) + 1
    for i in range(jobs):
        # About two jobs in three belong to a project; the rest are one-off service calls.
        project_id = rng.choice(project_ids) if project_ids and rng.random() < 0.65 else None
        created = moment(project_created[project_id] if project_id is not None else start)
        doc: dict[str, Any] = {
            "jobNumber": str(first_job_number + i),
            "jobStatus": rng.choice(_JOB_STATUSES),
            "businessUnitId": rng.choice([1, 2, 3]),
            "createdOn": format_ticks(created),
            "modifiedOn": format_ticks(moment(created)),
        }
        if project_id is not None:
            doc["projectId"] = project_id
        else:
            doc["customerId"] = rng.choice(customer_ids)
        tenant.create_job(doc)
    return tenant.summary()


def load_seed_file(state: SimState, path: str | Path, default_tenant: int) -> list[dict[str, Any]]:
    """Load ``{"tenant"?, "customers", "projects", "jobs"}`` or ``{"tenants": {"<id>": {...}}}``."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if "tenants" in doc:
        items = [(int(tenant_id), body) for tenant_id, body in doc["tenants"].items()]
    else:
        body = {k: v for k, v in doc.items() if k != "tenant"}
        items = [(int(doc.get("tenant", default_tenant)), body)]
    results = []
    for tenant_id, body in items:
        state.tenant(tenant_id).bulk(body)
        results.append(state.tenant(tenant_id).summary())
    return results
