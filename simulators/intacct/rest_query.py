"""``POST /services/core/query`` on ``projects/project``: filters, expression, order and pages.

Rows come back flat with dotted keys, as the real query service answers. Anything the API would
refuse (an unknown field or operator, `includePrivate` outside `filterParameters`, a page over the
limit) raises QueryError with the text Sage uses where it is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from simulators.intacct.projects import Project
from simulators.intacct.rest_options import RestOptions

# REST category values of the XML PROJECTCATEGORY ones the company stores.
CATEGORY_TO_REST = {"Contract": "contract", "Capitalized": "capitalized",
                    "Internal Non-billable": "internalNonBillable", "Internal Billable": "internalBillable"}
CATEGORY_FROM_REST = {v: k for k, v in CATEGORY_TO_REST.items()}
_KEYS = {"object", "fields", "filters", "filterExpression", "filterParameters", "orderBy", "start", "size"}
_PARAMETERS = {"asOfDate", "caseSensitiveComparison", "includePrivate", "includeHierarchyFields"}
_OPERATORS = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$notIn", "$contains", "$notContains",
              "$startsWith", "$notStartsWith", "$endsWith", "$notEndsWith"}
_TOKEN = re.compile(r"\s*(\d+|and|or|\(|\))", re.IGNORECASE)


class QueryError(Exception):
    """A query the API refuses (400), with the detail's target when there is one."""

    def __init__(self, message: str, target: str = "", error_id: str = "REST-1043") -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        self.error_id = error_id


def field_value(p: Project, name: str, key_prefix: str = "/objects/projects/project/") -> Any:
    """A project's value under a query field name."""
    parent, customer = p.parent_id, p.customer_id
    values: dict[str, Any] = {
        "key": str(p.recordno), "id": p.project_id, "name": p.name,
        "category": CATEGORY_TO_REST.get(p.category, p.category), "status": p.status,
        "parent.id": parent, "parent.name": None, "customer.id": customer, "customer.name": customer,
        "audit.createdDateTime": _iso(p.when_created), "audit.modifiedDateTime": _iso(p.when_modified),
        "href": f"{key_prefix}{p.recordno}",
    }
    return values[name]


FIELDS = ("key", "id", "name", "category", "status", "parent.id", "parent.name", "customer.id", "customer.name",
          "audit.createdDateTime", "audit.modifiedDateTime", "href")


def _iso(epoch: float) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch else None


def run_query(body: Any, projects: list[Project], options: RestOptions) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The page of rows and the ``ia::meta`` the query asks for."""
    if not isinstance(body, Mapping):
        raise QueryError("A POST request requires a payload", error_id="REST-1028")
    for key in body:
        if key not in _KEYS:
            raise QueryError(f"Unrecognized key {key} in query payload", target=f"/{key}")
    if body.get("object") != "projects/project":
        raise QueryError(f"{body.get('object')} is not a valid object for this simulator", target="/object")
    fields = body.get("fields")
    if not isinstance(fields, list) or not fields:
        raise QueryError("fields is required", target="/fields")
    for name in fields:
        if name not in FIELDS:
            raise QueryError(f"The {name} field does not exist", target=f"/fields/{name}")
    parameters = body.get("filterParameters") or {}
    if not isinstance(parameters, Mapping) or any(k not in _PARAMETERS for k in parameters):
        raise QueryError("filterParameters holds an unknown key", target="/filterParameters")
    case_sensitive = parameters.get("caseSensitiveComparison", True) is not False
    conditions = [_condition(f, case_sensitive, options) for f in body.get("filters") or []]
    combine = _expression(str(body.get("filterExpression") or "and"), len(conditions))
    rows = [p for p in projects if not conditions or combine([c(p) for c in conditions])]
    for order in reversed(body.get("orderBy") or [{"key": "asc"}]):
        if not isinstance(order, Mapping) or len(order) != 1:
            raise QueryError("orderBy items are {field: asc|desc}", target="/orderBy")
        [(name, direction)] = order.items()
        if name not in FIELDS or direction not in ("asc", "desc"):
            raise QueryError(f"cannot order by {name} {direction}", target="/orderBy")
        rows.sort(key=_sorter(name, options), reverse=direction == "desc")
    start, size = body.get("start", 1), body.get("size", 100)
    if not isinstance(start, int) or start < 1 or not isinstance(size, int) or size < 1:
        raise QueryError("start and size must be positive integers", target="/start")
    if size > options.max_query_size:
        raise QueryError(f"size must be at most {options.max_query_size}", target="/size")
    page = rows[start - 1 : start - 1 + size]
    end = start - 1 + len(page)
    meta = {"totalCount": len(rows), "start": start, "pageSize": size,
            "next": end + 1 if end < len(rows) else None, "previous": max(1, start - size) if start > 1 else None}
    return [{name: field_value(p, name) for name in fields} for p in page], meta


def _sorter(name: str, options: RestOptions) -> Callable[[Project], Any]:
    if name == "key":
        if options.key_order == "numeric":
            return lambda p: p.recordno
        return lambda p: str(p.recordno)
    return lambda p: field_value(p, name) or ""


def _condition(item: Any, case_sensitive: bool, options: RestOptions) -> Callable[[Project], bool]:
    if not isinstance(item, Mapping) or len(item) != 1:
        raise QueryError("a filter is {operator: {field: value}}", target="/filters")
    [(operator, argument)] = item.items()
    if operator not in _OPERATORS:
        raise QueryError(f"{operator} is not a valid operator", target=f"/filters/{operator}")
    if not isinstance(argument, Mapping) or len(argument) != 1:
        raise QueryError(f"{operator} takes one field", target=f"/filters/{operator}")
    [(name, value)] = argument.items()
    if name not in FIELDS:
        raise QueryError(f"The {name} field does not exist", target=f"/filters/{operator}/{name}")
    if operator in ("$in", "$notIn"):
        if not isinstance(value, list):
            raise QueryError(f"{operator} takes an array", target=f"/filters/{operator}/{name}")
        if options.max_in_list is not None and len(value) > options.max_in_list:
            raise QueryError(f"{operator} takes at most {options.max_in_list} values", target=f"/filters/{operator}")

    def fold(v: Any) -> Any:
        return v.lower() if isinstance(v, str) and not case_sensitive else v

    want = [fold(v) for v in value] if isinstance(value, list) else fold(value)

    def test(p: Project) -> bool:
        have = fold(field_value(p, name))
        if operator == "$eq":
            return bool(have == want)
        if operator == "$ne":
            return bool(have != want)
        if operator == "$in":
            return have in want
        if operator == "$notIn":
            return have not in want
        if have is None:
            return False
        text, arg = str(have), str(want)
        tests = {"$contains": arg in text, "$startsWith": text.startswith(arg), "$endsWith": text.endswith(arg),
                 "$lt": text < arg, "$lte": text <= arg, "$gt": text > arg, "$gte": text >= arg}
        negated = {"$notContains": "$contains", "$notStartsWith": "$startsWith", "$notEndsWith": "$endsWith"}
        return not tests[negated[operator]] if operator in negated else tests[operator]

    return test


def _expression(text: str, count: int) -> Callable[[list[bool]], bool]:
    """``and``, ``or``, or a numbered expression such as ``(1 and 2) or 3``."""
    if text.strip().lower() in ("and", "or"):
        joiner = all if text.strip().lower() == "and" else any
        return lambda values: joiner(values)
    tokens = _TOKEN.findall(text)
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise QueryError(f"invalid filterExpression {text!r}", target="/filterExpression")
    python = " ".join(f"v[{int(t) - 1}]" if t.isdigit() else t.lower() for t in tokens)
    if any(t.isdigit() and not 1 <= int(t) <= count for t in tokens):
        raise QueryError("filterExpression names a filter that does not exist", target="/filterExpression")
    code = compile(python, "<filterExpression>", "eval")
    return lambda values: bool(eval(code, {"__builtins__": {}}, {"v": values}))  # noqa: S307 - tokens checked
