"""Export feeds (change-log pages with continuation tokens) and paginated list queries."""

from __future__ import annotations

import base64
import binascii
import random
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simulators.servicetitan.faults import Faults
from simulators.servicetitan.records import (
    CustomerRecord,
    JobRecord,
    ProjectRecord,
    project_modified,
    render_customer,
    render_job,
    render_project,
)
from simulators.servicetitan.tenant import ChangeLog, InputError, TenantData
from simulators.servicetitan.timefmt import TICKS_PER_SECOND, parse_ticks

MAX_PAGE_SIZE = 5000
DEFAULT_PAGE_SIZE = 50
MAX_IDS = 50
_TOKEN_PREFIX = "simst1:"
_QUERY_CACHE_LIMIT = 32


# ---------------------------------------------------------------------------- export feeds


def encode_token(position: int, min_modified: int | None) -> str:
    """An opaque continuation token: a log position, and the ``from`` date filter if any."""
    raw = f"{_TOKEN_PREFIX}{position}:{'' if min_modified is None else min_modified}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_from(value: str | None) -> tuple[int, int | None]:
    """(log position, min modifiedOn) from a ``from`` value: empty, a token, or an ISO date."""
    if not value:
        return 0, None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if raw.startswith(_TOKEN_PREFIX):
        position, _, minimum = raw[len(_TOKEN_PREFIX) :].partition(":")
        if position.isdigit() and (minimum == "" or minimum.lstrip("-").isdigit()):
            return int(position), int(minimum) if minimum else None
    # Not one of our tokens: a date string, matched against modifiedOn (raises when it is neither).
    return 0, parse_ticks(value)


@dataclass(frozen=True)
class _Feed:
    log: ChangeLog
    records: Mapping[int, Any]
    modified: Callable[[Any], int]
    render: Callable[[Any], dict[str, Any]]


def _feed(tenant: TenantData, kind: str) -> _Feed:
    if kind == "jobs":
        return _Feed(tenant.job_log, tenant.jobs, _job_modified, lambda r: render_job(r, export=True))
    return _Feed(tenant.project_log, tenant.projects, project_modified, lambda r: render_project(r, export=True))


def _job_modified(record: JobRecord) -> int:
    return record.modified_on


def export_page(
    tenant: TenantData, kind: str, from_value: str | None, include_recent: bool, faults: Faults,
    rng: random.Random, now: int,
) -> tuple[dict[str, Any], int]:  # fmt: skip
    """One export page of ``jobs`` or ``projects`` and how many duplicated rows it carries."""
    position, min_modified = decode_from(from_value)
    feed = _feed(tenant, kind)
    log, records = feed.log, feed.records

    def live(i: int) -> bool:
        record = records[log.ids[i]]
        return bool(record.log_pos == i and (min_modified is None or feed.modified(record) >= min_modified))

    # Without includeRecentChanges a change shows only once it is `recent_changes_delay` old.
    end = len(log)
    if not include_recent:
        end = bisect_right(log.ticks, now - int(faults.recent_changes_delay * TICKS_PER_SECOND))
    position = min(position, len(log))
    page_size = faults.export_page_size

    duplicates: list[int] = []
    if faults.duplicate_rows > 0 and position > 0:
        # Repeat some rows delivered just before the token, as includeRecentChanges may.
        for i in range(max(0, position - page_size), min(position, end)):
            if live(i) and rng.random() < faults.duplicate_rows:
                duplicates.append(log.ids[i])
        duplicates = duplicates[-(page_size - 1) :] if page_size > 1 else []

    fresh: list[int] = []
    i = position
    while i < end and len(fresh) + len(duplicates) < page_size:
        if live(i):
            fresh.append(log.ids[i])
        i += 1
    continue_from = max(i, position)
    has_more = any(live(j) for j in range(i, end))
    body = {
        "hasMore": has_more,
        "continueFrom": encode_token(continue_from, min_modified),
        "data": [feed.render(records[rid]) for rid in duplicates + fresh],
    }
    return body, len(duplicates)


# ---------------------------------------------------------------------------- list queries

_SORT_FIELDS = {"id": "Id", "modifiedon": "ModifiedOn", "createdon": "CreatedOn"}
_LIST_PARAMS = ("modifiedOnOrAfter", "modifiedBefore", "createdOnOrAfter", "createdBefore")


def _int_param(query: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(name, f"The value '{value}' is not valid.") from None


def _required_int(query: Mapping[str, str], name: str, default: int) -> int:
    value = _int_param(query, name)
    return default if value is None else value


def _bool_param(query: Mapping[str, str], name: str) -> bool:
    value = (query.get(name) or "false").lower()
    if value not in ("true", "false"):
        raise InputError(name, f"The value '{query.get(name)}' is not valid.")
    return value == "true"


def _time_param(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if not value:
        return None
    try:
        return parse_ticks(value)
    except ValueError as exc:
        raise InputError(name, str(exc)) from None


def _ids_param(query: Mapping[str, str]) -> list[int] | None:
    value = query.get("ids")
    if not value:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if len(parts) > MAX_IDS:
        raise InputError("ids", f"Maximum {MAX_IDS} IDs are allowed.")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise InputError("ids", f"The value '{value}' is not valid.") from None


def _sort_param(query: Mapping[str, str]) -> tuple[str, bool]:
    value = (query.get("sort") or "+Id").strip()
    descending = value.startswith("-")
    name = value.lstrip("+-").strip().lower()
    if name not in _SORT_FIELDS:
        raise InputError("sort", f"Sorting by '{value}' is not supported (Id, ModifiedOn, CreatedOn).")
    return _SORT_FIELDS[name], descending


def list_page(tenant: TenantData, kind: str, query: Mapping[str, str]) -> dict[str, Any]:
    """One page of ``jobs``, ``projects`` or ``customers`` for the list endpoints' parameters."""
    page = _required_int(query, "page", 1)
    page_size = _required_int(query, "pageSize", DEFAULT_PAGE_SIZE)
    if page < 1:
        raise InputError("page", "The page must be 1 or greater.")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InputError("pageSize", f"The page size must be between 1 and {MAX_PAGE_SIZE}.")
    ids = _ids_param(query)
    bounds = tuple(_time_param(query, name) for name in _LIST_PARAMS)
    sort = _sort_param(query)
    include_total = _bool_param(query, "includeTotal")
    refs = (
        _int_param(query, "projectId") if kind == "jobs" else None,
        _int_param(query, "customerId") if kind != "customers" else None,
    )
    active = (query.get("active") or "True").capitalize() if kind == "customers" else "Any"
    if active not in ("True", "False", "Any"):
        raise InputError("active", f"The value '{query.get('active')}' is not valid.")

    records: Mapping[int, Any] = getattr(tenant, kind)
    modified, created = _time_fields(kind)

    def keep(r: Any) -> bool:
        if bounds[0] is not None and modified(r) < bounds[0]:
            return False
        if bounds[1] is not None and modified(r) >= bounds[1]:
            return False
        if bounds[2] is not None and created(r) < bounds[2]:
            return False
        if bounds[3] is not None and created(r) >= bounds[3]:
            return False
        if refs[0] is not None and r.project_id != refs[0]:
            return False
        if refs[1] is not None and r.customer_id != refs[1]:
            return False
        return active == "Any" or r.active == (active == "True")

    def ordered(candidates: list[Any]) -> list[int]:
        field, descending = sort
        key: Callable[[Any], Any] = {"Id": lambda r: r.id, "ModifiedOn": lambda r: (modified(r), r.id),
                                     "CreatedOn": lambda r: (created(r), r.id)}[field]  # fmt: skip
        return [r.id for r in sorted(candidates, key=key, reverse=descending)]

    if ids is not None:
        matched = ordered([records[i] for i in dict.fromkeys(ids) if i in records and keep(records[i])])
    else:
        # Sorted, filtered id lists are cached until the tenant changes: paging through 100,000
        # records then costs one sort, not one per page.
        cache_key = (kind, bounds, sort, refs, active)
        cached = tenant.query_cache.get(cache_key)
        if cached is None:
            if len(tenant.query_cache) >= _QUERY_CACHE_LIMIT:
                tenant.query_cache.clear()
            cached = tenant.query_cache[cache_key] = ordered([r for r in records.values() if keep(r)])
        matched = cached

    start = (page - 1) * page_size
    chunk = matched[start : start + page_size]
    render = _renderer(kind)
    return {
        "page": page,
        "pageSize": page_size,
        "hasMore": start + page_size < len(matched),
        "totalCount": len(matched) if include_total else None,
        "data": [render(records[i]) for i in chunk],
    }


def _time_fields(kind: str) -> tuple[Callable[[Any], int], Callable[[Any], int]]:
    if kind == "projects":
        return project_modified, _created
    return _modified, _created


def _modified(record: JobRecord | CustomerRecord) -> int:
    return record.modified_on


def _created(record: JobRecord | ProjectRecord | CustomerRecord) -> int:
    return record.created_on


def _renderer(kind: str) -> Callable[[Any], dict[str, Any]]:
    if kind == "jobs":
        return render_job
    if kind == "projects":
        return render_project
    return render_customer
