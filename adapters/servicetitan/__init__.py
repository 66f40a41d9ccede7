"""ServiceTitan adapter: OAuth2 tokens, export feeds, lookups and customers over REST."""

from adapters.servicetitan.client import ServiceTitanClient
from adapters.servicetitan.models import (
    Customer,
    ExportPage,
    Job,
    Project,
    RejectedRow,
    ServiceTitanCredentials,
    export_start,
    format_time,
    parse_time,
)

__all__ = [
    "Customer",
    "ExportPage",
    "Job",
    "Project",
    "RejectedRow",
    "ServiceTitanClient",
    "ServiceTitanCredentials",
    "export_start",
    "format_time",
    "parse_time",
]
