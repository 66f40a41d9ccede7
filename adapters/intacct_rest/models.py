"""Values of the Sage Intacct REST adapter: credentials, limits, and the XML-field ↔ REST-field mapping.

The daemon speaks in the XML gateway's PROJECT field names (PROJECTID, NAME, …) on both APIs; this
module is the one place that knows their REST names and shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from adapters.intacct.models import IntacctProject

DEFAULT_BASE_URL = "https://api.intacct.com/ia/api/v1"
PROJECT_OBJECT = "projects/project"
PROJECT_PATH = "/objects/projects/project"
QUERY_PATH = "/services/core/query"
TOKEN_PATH = "/oauth2/token"
ENTITY_HEADER = "X-IA-API-Param-Entity"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# "You can include at most 500 records in a batch request" (Sage's bulk-requests guide).
MAX_BATCH = 500
# The query service's page limit ("4000 maximum"); the $in list has no documented limit, so reads
# go in chunks of the XML readByName size.
MAX_QUERY_SIZE = 4000
DEFAULT_IN_CHUNK = 100
MAX_IDEMPOTENCY_KEY = 256

# Query fields of a project row (query rows come back flat, with dotted keys).
READ_FIELDS: tuple[str, ...] = ("key", "id", "name", "parent.id", "customer.id", "status")

# XML PROJECTCATEGORY values and the REST `category` enum.
CATEGORIES: Mapping[str, str] = MappingProxyType(
    {
        "Contract": "contract",
        "Capitalized": "capitalized",
        "Internal Non-billable": "internalNonBillable",
        "Internal Billable": "internalBillable",
    }
)
_REFERENCES = {"PARENTID": "parent", "CUSTOMERID": "customer"}


@dataclass(frozen=True)
class RestCredentials:
    """OAuth2 client credentials for a Web Services user (``user@company``), plus an optional entity."""

    base_url: str
    client_id: str
    client_secret: str
    username: str
    entity_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"RestCredentials(base_url={self.base_url!r}, client_id={self.client_id!r}, client_secret='***', "
            f"username={self.username!r}, entity_id={self.entity_id!r})"
        )

    __str__ = __repr__


def category_to_rest(value: str) -> str:
    """The REST `category` for an XML PROJECTCATEGORY (an already-REST value passes through)."""
    return CATEGORIES.get(value, value)


def project_body(fields: Mapping[str, str | None], *, create: bool = False) -> dict[str, Any]:
    """A POST/PATCH body from XML-named fields; None omits the field on create and clears it on update."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if create and value is None:
            continue
        if name == "PROJECTID":
            body["id"] = value
        elif name == "NAME":
            body["name"] = value
        elif name == "PROJECTCATEGORY":
            body["category"] = None if value is None else category_to_rest(value)
        elif name == "STATUS":
            body["status"] = value
        elif name in _REFERENCES:
            # An empty id is refused on a reference; how to clear one is not documented, so null is sent.
            body[_REFERENCES[name]] = {"id": value or None}
        else:
            raise ValueError(f"unsupported PROJECT field {name}")
    return body


def project_from_row(row: Mapping[str, Any]) -> IntacctProject:
    """An IntacctProject from a query row (flat dotted keys) or a GET body (nested objects)."""

    def ref(name: str) -> str | None:
        if f"{name}.id" in row:
            return _text(row[f"{name}.id"])
        nested = row.get(name)
        return _text(nested.get("id")) if isinstance(nested, Mapping) else None

    key = row.get("key")
    try:
        record_no = int(key) if key is not None else None
    except (TypeError, ValueError):
        record_no = None
    project_id = _text(row.get("id"))
    if project_id is None:
        raise ValueError("project row without id")
    return IntacctProject(
        project_id=project_id,
        record_no=record_no,
        name=_text(row.get("name")),
        parent_id=ref("parent"),
        customer_id=ref("customer"),
        status=_text(row.get("status")),
    )


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
