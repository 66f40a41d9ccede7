"""The Sage Intacct REST wire shapes the daemon uses, as JSON Schemas (draft 7) in our own words.

Written from our understanding of the API, and only as much of it as the REST adapter and the
simulator speak: the project create and update bodies (single and batch), the object reference a
write returns, the project as ``GET /objects/projects/project/{key}`` answers it (the fields we
read), the query service's request and answer, and the ``ia::error`` envelope.

The authority is Sage's published OpenAPI documents "Project and Resource Management" and "Common
Resources" (developer.sage.com, Intacct REST API, OpenAPI index). To check the same exchanges
against them too, download both into one directory as ``project-and-resource-management.json`` and
``common-resources.json`` and set ``ST_INTACCT_SYNC_SAGE_OPENAPI_DIR`` to it; the integration test
``tests/integration/test_intacct_rest_openapi.py`` then validates against both (it skips otherwise).
When the two disagree, fix this module.

Request bodies are closed (``additionalProperties: false``) so that an unknown or misspelt field
fails here before Intacct refuses it. Properties a request may not carry are declared with
``readOnly: true``; ``read_only_sent`` lists the ones a body carries anyway.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_TEXT: Schema = {"type": "string"}
_TEXT_OR_NULL: Schema = {"type": ["string", "null"]}
_READ_ONLY: Schema = {"readOnly": True}

CATEGORIES = ["contract", "capitalized", "internalNonBillable", "internalBillable"]
STATUSES = ["active", "inactive"]

# A reference to another record in a write: by id (what we send) or by key; null clears it.
_WRITE_REFERENCE: Schema = {
    "type": "object",
    "properties": {"id": _TEXT_OR_NULL, "key": _TEXT_OR_NULL},
    "additionalProperties": False,
    "minProperties": 1,
}

_WRITABLE: dict[str, Schema] = {
    "name": _TEXT,
    "category": {"enum": CATEGORIES},
    "status": {"enum": STATUSES},
    "parent": _WRITE_REFERENCE,
    "customer": _WRITE_REFERENCE,
    "location": _WRITE_REFERENCE,
}
# Set by Intacct, never by a request.
_SYSTEM = {"key", "href", "audit", "entity", "rootProject", "webURL"}

PROJECT_CREATE: Schema = {
    "type": "object",
    "properties": {"id": _TEXT, **_WRITABLE} | {name: _READ_ONLY for name in _SYSTEM},
    # id is optional only with document sequencing, which the daemon does not use.
    "required": ["id", "name", "category"],
    "additionalProperties": False,
}

# PATCH changes only the fields it names; a project's id cannot be renamed.
PROJECT_UPDATE: Schema = {
    "type": "object",
    "properties": dict(_WRITABLE) | {name: _READ_ONLY for name in _SYSTEM | {"id"}},
    "additionalProperties": False,
}

# In a batch PATCH the record's key travels in each element instead of the path.
PROJECT_BATCH_UPDATE_ITEM: Schema = {
    **PROJECT_UPDATE,
    "properties": PROJECT_UPDATE["properties"] | {"key": _TEXT},
    "required": ["key"],
}


def batch(item: Schema) -> Schema:
    """A batch request: an array of up to 500 single-record bodies."""
    return {"type": "array", "items": item, "minItems": 1, "maxItems": 500}


# Keys are strings in JSON, even though they are numbers in Intacct.
OBJECT_REFERENCE: Schema = {
    "type": "object",
    "properties": {"key": _TEXT, "id": _TEXT_OR_NULL, "href": _TEXT},
    "required": ["key"],
}

# Totals of a single-record or write answer.
METADATA: Schema = {
    "type": "object",
    "properties": {name: {"type": "integer", "minimum": 0} for name in ("totalCount", "totalSuccess", "totalError")},
    "required": ["totalCount"],
}

# Paging of a collection: next/previous are record numbers, null (or 0 on list endpoints) when none.
METADATA_PAGES: Schema = {
    "type": "object",
    "properties": {
        "totalCount": {"type": "integer", "minimum": 0},
        "start": {"type": "integer", "minimum": 0},
        "pageSize": {"type": "integer", "minimum": 0},
        "next": {"type": ["integer", "null"], "minimum": 0},
        "previous": {"type": ["integer", "null"], "minimum": 0},
    },
    "required": ["totalCount", "start", "pageSize", "next", "previous"],
}

# A reference as read back: an unset one comes back as an object of nulls, not omitted.
_READ_REFERENCE: Schema = {
    "type": "object",
    "properties": {"key": _TEXT_OR_NULL, "id": _TEXT_OR_NULL, "name": _TEXT_OR_NULL, "href": _TEXT_OR_NULL},
}

# The project as read back; only what the daemon reads is pinned, other fields may come along.
PROJECT: Schema = {
    "type": "object",
    "properties": {
        "key": _TEXT,
        "id": _TEXT,
        "name": _TEXT_OR_NULL,
        "category": {"enum": [*CATEGORIES, None]},
        "status": {"enum": STATUSES},
        "parent": _READ_REFERENCE,
        "customer": _READ_REFERENCE,
        "entity": _READ_REFERENCE,
        "audit": {
            "type": "object",
            "properties": {"createdDateTime": _TEXT_OR_NULL, "modifiedDateTime": _TEXT_OR_NULL},
        },
        "href": _TEXT,
    },
    "required": ["key", "id"],
}

_SCALAR: Schema = {"type": ["string", "number", "boolean", "null"]}
_FIELD = r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$"


def _operator(value: Schema) -> Schema:
    return {"type": "object", "minProperties": 1, "maxProperties": 1,
            "propertyNames": {"pattern": _FIELD}, "additionalProperties": value}


# Each filter is {"<operator>": {"<field>": <value>}}; there is no `like`.
FILTER_OPERATORS: dict[str, Schema] = {
    "$eq": _operator(_SCALAR),
    "$ne": _operator(_SCALAR),
    "$lt": _operator({"type": ["string", "number"]}),
    "$lte": _operator({"type": ["string", "number"]}),
    "$gt": _operator({"type": ["string", "number"]}),
    "$gte": _operator({"type": ["string", "number"]}),
    "$in": _operator({"type": "array", "items": _SCALAR, "minItems": 1}),
    "$notIn": _operator({"type": "array", "items": _SCALAR, "minItems": 1}),
    "$contains": _operator({"type": ["string", "number"]}),
    "$notContains": _operator({"type": ["string", "number"]}),
    "$startsWith": _operator({"type": ["string", "number"]}),
    "$notStartsWith": _operator({"type": ["string", "number"]}),
    "$endsWith": _operator({"type": ["string", "number"]}),
    "$notEndsWith": _operator({"type": ["string", "number"]}),
}

FILTER: Schema = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": FILTER_OPERATORS,
    "additionalProperties": False,
}

QUERY_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "object": {"type": "string", "pattern": r"^[a-z0-9-]+(::)?[A-Za-z0-9_-]*/[A-Za-z0-9_:-]+$"},
        "fields": {"type": "array", "items": {"type": "string", "pattern": _FIELD}, "minItems": 1},
        "filters": {"type": "array", "items": FILTER},
        # Filters numbered from 1, joined with and/or and parentheses.
        "filterExpression": {"type": "string", "pattern": r"^[0-9()\s]*(\s*(and|or)\s*[0-9()\s]+)*$"},
        "filterParameters": {
            "type": "object",
            "properties": {
                "asOfDate": _TEXT,
                "caseSensitiveComparison": {"type": "boolean"},
                "includePrivate": {"type": "boolean"},
                "includeHierarchyFields": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "orderBy": {"type": "array", "items": _operator({"enum": ["asc", "desc"]})},
        "start": {"type": "integer", "minimum": 1},
        "size": {"type": "integer", "minimum": 1, "maximum": 4000},
    },
    "required": ["object", "fields"],
    "additionalProperties": False,
}

# Query rows are flat, with dotted keys ("customer.id").
QUERY_ANSWER: Schema = {
    "type": "object",
    "properties": {
        "ia::result": {"type": "array", "items": {"type": "object", "additionalProperties": {
            "type": ["string", "number", "boolean", "object", "null"]}}},
        "ia::meta": METADATA_PAGES,
    },
    "required": ["ia::result", "ia::meta"],
}

ERROR: Schema = {
    "type": "object",
    "properties": {
        "code": _TEXT,
        "message": _TEXT,
        "errorId": _TEXT,
        "supportId": _TEXT,
        "additionalInfo": {"type": "object"},
        # A list of {code, message, errorId, target, …}; a single object in gateway errors.
        "details": {"type": ["array", "object"], "items": {"type": "object"}},
    },
    "required": ["code", "message"],
}

# An application error nests under ia::result; gateway and some other errors put it at the top.
ERROR_ANSWER: Schema = {
    "anyOf": [
        {"type": "object", "properties": {"ia::error": ERROR, "ia::meta": METADATA}, "required": ["ia::error"]},
        {"type": "object",
         "properties": {"ia::result": {"type": "object", "properties": {"ia::error": ERROR},
                                       "required": ["ia::error"]},
                        "ia::meta": METADATA},
         "required": ["ia::result"]},
    ]
}


def answer(result: Schema, meta: Schema = METADATA) -> Schema:
    """A success answer: ``ia::result`` and ``ia::meta``."""
    return {"type": "object", "properties": {"ia::result": result, "ia::meta": meta},
            "required": ["ia::result", "ia::meta"]}


# One element of a batch answer, by position: the reference of a record written, or its refusal.
BATCH_ITEM: Schema = {
    "anyOf": [
        OBJECT_REFERENCE,
        {"type": "object", "properties": {"ia::error": ERROR, "ia::status": {"type": "integer"}},
         "required": ["ia::error", "ia::status"]},
    ]
}
BATCH_ANSWER: Schema = answer({"type": "array", "items": BATCH_ITEM})
WRITE_ANSWER: Schema = answer(OBJECT_REFERENCE)
PROJECT_ANSWER: Schema = answer(PROJECT)


def read_only_sent(schema: Schema, body: Any) -> list[str]:
    """The top-level fields of a request body its schema marks ``readOnly``."""
    if not isinstance(body, dict):
        return []
    props = schema.get("properties", {})
    return sorted(f"/{name}" for name in body if props.get(name, {}).get("readOnly"))
