"""The simulator's records and their JSON shapes, as the OpenAPI documents define them.

Records keep only what varies (slots, integer times); the many fields the daemon never reads are
filled with plausible constants when a row is rendered, so that 100,000 records stay small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.servicetitan.timefmt import format_ticks

JOB_STATUSES = ("Scheduled", "Dispatched", "InProgress", "Hold", "Completed", "Canceled")
PROJECT_STATUSES = {"Not Started": 1, "In Progress": 2, "On Hold": 3, "Completed": 4, "Canceled": 5}


@dataclass(slots=True)
class CustomerRecord:
    """A customer as the simulator keeps it."""

    id: int
    name: str
    type: str
    active: bool
    created_on: int
    modified_on: int
    street: str = "100 Main St"
    city: str = "Springfield"
    state: str = "IL"
    zip: str = "62701"


@dataclass(slots=True)
class ProjectRecord:
    """A project as the simulator keeps it; ``log_pos`` is its latest entry in the change log."""

    id: int
    number: str
    name: str | None
    status: str | None
    customer_id: int
    location_id: int
    business_unit_ids: list[int]
    created_on: int
    modified_on: int | None
    active: bool
    summary: str | None = None
    job_ids: list[int] = field(default_factory=list)
    log_pos: int = -1


@dataclass(slots=True)
class JobRecord:
    """A job as the simulator keeps it; ``log_pos`` is its latest entry in the change log."""

    id: int
    job_number: str
    project_id: int | None
    customer_id: int
    location_id: int
    business_unit_id: int
    job_type_id: int
    job_status: str
    priority: str
    created_on: int
    modified_on: int
    active: bool
    summary: str | None = None
    completed_on: int | None = None
    log_pos: int = -1


def project_modified(record: ProjectRecord) -> int:
    """The time exports and filters compare: modifiedOn, or createdOn when it is null."""
    return record.modified_on if record.modified_on is not None else record.created_on


def render_job(job: JobRecord, *, export: bool = False) -> dict[str, Any]:
    """``Jpm.V2.JobResponse`` (or ``ExportJobsResponse`` with ``active`` when ``export``)."""
    row: dict[str, Any] = {
        "id": job.id,
        "jobNumber": job.job_number,
        "projectId": job.project_id,
        "customerId": job.customer_id,
        "locationId": job.location_id,
        "jobStatus": job.job_status,
        "completedOn": format_ticks(job.completed_on) if job.completed_on is not None else None,
        "businessUnitId": job.business_unit_id,
        "jobTypeId": job.job_type_id,
        "priority": job.priority,
        "campaignId": 301,
        "appointmentCount": 1,
        "firstAppointmentId": job.id * 10 + 1,
        "lastAppointmentId": job.id * 10 + 1,
        "recallForId": None,
        "warrantyId": None,
        "jobGeneratedLeadSource": None,
        "noCharge": False,
        "notificationsEnabled": True,
        "createdOn": format_ticks(job.created_on),
        "createdById": 11,
        "modifiedOn": format_ticks(job.modified_on),
        "tagTypeIds": [],
        "leadCallId": None,
        "partnerLeadCallId": None,
        "bookingId": None,
        "soldById": None,
        "customerPo": "",
        "invoiceId": job.id + 7_000_000,
        "membershipId": None,
        "total": 0.0,
        "createdFromEstimateId": None,
        "estimateIds": [],
        "equipmentIds": [],
        "isAutoDispatched": False,
        "summary": job.summary,
        "customFields": [],
        "externalData": [],
        "summaryOfWork": None,
    }
    if export:
        row["active"] = job.active
    return row


def render_project(project: ProjectRecord, *, export: bool = False) -> dict[str, Any]:
    """``Jpm.V2.ProjectResponse`` (or ``ExportProjectsResponse`` with ``active`` when ``export``)."""
    row: dict[str, Any] = {
        "id": project.id,
        "number": project.number,
        "name": project.name,
        "summary": project.summary,
        "status": project.status,
        "statusId": PROJECT_STATUSES.get(project.status) if project.status else None,
        "subStatus": None,
        "subStatusId": None,
        "customerId": project.customer_id,
        "locationId": project.location_id,
        "projectTypeId": None,
        "projectManagerIds": [],
        "businessUnitIds": list(project.business_unit_ids),
        "startDate": None,
        "targetCompletionDate": None,
        "actualCompletionDate": None,
        "modifiedOn": format_ticks(project.modified_on) if project.modified_on is not None else None,
        "createdOn": format_ticks(project.created_on),
        "customFields": [],
        "externalData": [],
        "jobIds": list(project.job_ids),
    }
    if export:
        row["active"] = project.active
    return row


def render_customer(customer: CustomerRecord) -> dict[str, Any]:
    """``Crm.V2.Customers.CustomerResponse``."""
    return {
        "id": customer.id,
        "active": customer.active,
        "name": customer.name,
        "type": customer.type,
        "address": {
            "street": customer.street,
            "unit": None,
            "city": customer.city,
            "state": customer.state,
            "zip": customer.zip,
            "country": "USA",
            "latitude": None,
            "longitude": None,
        },
        "customFields": [],
        "balance": 0.0,
        "taxExempt": False,
        "tagTypeIds": [],
        "doNotMail": False,
        "doNotService": False,
        "nationalAccount": False,
        "createdOn": format_ticks(customer.created_on),
        "createdById": 11,
        "modifiedOn": format_ticks(customer.modified_on),
        "mergedToId": None,
        "paymentTermId": None,
        "creditLimit": None,
        "creditLimitBalance": None,
        "externalData": [],
    }
