"""The Sage Intacct REST client: the same calls and result types as the XML gateway client.

`execute` takes the XML adapter's function specs (CreateProject, UpdateProject, ReadProjects,
QueryProjects) and answers FunctionResults in their order, so the daemon drives both APIs alike.
Creates travel as POST batches, updates as PATCH batches keyed by the record key, which the query
service resolves from the PROJECTID once and the client then remembers.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import aiohttp

from adapters.errors import ConnectionFailure, PermanentError, TransientError
from adapters.intacct.models import (
    MAX_PAGE_SIZE,
    CreateProject,
    ErrorDetail,
    Function,
    FunctionResult,
    IntacctProject,
    Outcome,
    QueryProjects,
    ReadProjects,
    UpdateProject,
)
from adapters.intacct_rest.envelope import error_fields
from adapters.intacct_rest.models import (
    DEFAULT_IN_CHUNK,
    MAX_BATCH,
    MAX_QUERY_SIZE,
    PROJECT_OBJECT,
    QUERY_PATH,
    READ_FIELDS,
    RestCredentials,
    project_body,
    project_from_row,
)
from adapters.intacct_rest.transport import MAX_BODY_BYTES, PRIORITY, Observer, Transport
from adapters.intacct_rest.writes import Write, Writer


class IntacctRestClient:
    """One Intacct company over the REST API, at most ``max_concurrent_requests`` requests in flight."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: RestCredentials,
        *,
        max_concurrent_requests: int = 2,
        request_timeout: float = 60.0,
        observer: Observer | None = None,
        batch_size: int = MAX_BATCH,
        in_chunk: int = DEFAULT_IN_CHUNK,
        retry_after_max: float = 600.0,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH}")
        if in_chunk < 1:
            raise ValueError("in_chunk must be at least 1")
        self._transport = Transport(session, credentials, max_concurrent=max_concurrent_requests,
                                    request_timeout=request_timeout, observer=observer,
                                    retry_after_max=retry_after_max, max_body_bytes=max_body_bytes)
        self._keys: dict[str, str] = {}  # PROJECTID -> record key
        self._writer = Writer(self._transport, self._keys)
        self.batch_size = batch_size
        self.in_chunk = in_chunk

    @property
    def credentials(self) -> RestCredentials:
        """The credentials in use (their repr masks the secret)."""
        return self._transport.credentials

    def update_credentials(self, credentials: RestCredentials) -> None:
        """Use new credentials from now on; the token (and, for another company, the key cache) is dropped."""
        old = self._transport.credentials
        self._transport.credentials = credentials
        self._transport.tokens.drop()
        if (old.base_url, old.username, old.entity_id) != (credentials.base_url, credentials.username,
                                                           credentials.entity_id):
            self._keys.clear()

    @property
    def in_flight(self) -> int:
        return self._transport.in_flight

    @property
    def max_in_flight_seen(self) -> int:
        return self._transport.max_in_flight_seen

    @property
    def stats(self) -> Mapping[str, int]:
        """Counters for tests and benchmarks: HTTP requests, tokens minted, replays sent, keys cached."""
        return MappingProxyType({"requests": self._transport.requests, "tokens_minted": self._transport.tokens.minted,
                                 "replays": self._writer.replays, "keys_cached": len(self._keys)})

    # -- the port ------------------------------------------------------------------------------

    async def execute(self, functions: Sequence[Function], *, priority: bool = False) -> list[FunctionResult]:
        """Run the functions (creates first, then updates, reads, queries); results in their order."""
        if not functions:
            return []
        if priority and not PRIORITY.get():
            token = PRIORITY.set(True)
            try:
                return await self.execute(functions)
            finally:
                PRIORITY.reset(token)
        controlids = [f.controlid for f in functions]
        if len(set(controlids)) != len(controlids):
            raise ValueError("function controlids must be unique within one request")
        results: dict[str, FunctionResult] = {}
        creates = [f for f in functions if isinstance(f, CreateProject)]
        updates = [f for f in functions if isinstance(f, UpdateProject)]
        for wave in _waves(creates):
            for chunk in _chunks(wave, self.batch_size):
                writes = [Write(f.controlid, "create", f.fields.get("PROJECTID") or "",
                                project_body(f.fields, create=True)) for f in chunk]
                results.update((r.controlid, r) for r in await self._writer.send("create", writes))
        if updates:
            results.update(await self._updates(updates))
        for f in functions:
            if isinstance(f, ReadProjects):
                found = await self.read_projects(f.project_ids)
                results[f.controlid] = FunctionResult(f.controlid, "readByName", "success", Outcome.SUCCESS,
                                                      projects=tuple(found.values()))
            elif isinstance(f, QueryProjects):
                results[f.controlid] = await self._query_page(f)
        return [results[c] for c in controlids]

    async def read_projects(self, project_ids: Sequence[str], *, priority: bool = False) -> dict[str, IntacctProject]:
        """The projects among ``project_ids`` that exist, by PROJECTID (query with ``$in``)."""
        if priority and not PRIORITY.get():
            token = PRIORITY.set(True)
            try:
                return await self.read_projects(project_ids)
            finally:
                PRIORITY.reset(token)
        ids = [i for i in dict.fromkeys(project_ids) if i]
        found: dict[str, IntacctProject] = {}
        for chunk in _chunks(ids, self.in_chunk):
            start = 1
            while start:
                rows, meta = await self._query([{"$in": {"id": chunk}}], None, start, min(len(chunk), MAX_QUERY_SIZE))
                found.update((p.project_id, p) for p in rows if p.project_id in chunk)
                start = _next(meta, start, len(rows))
        return found

    async def iter_projects(
        self, patterns: Sequence[str], page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[list[IntacctProject]]:
        """Pages of the projects whose PROJECTID is ``like`` one of ``patterns``, by record key."""
        filters, expression, check = like_filters(patterns)
        start = 1
        while start:
            rows, meta = await self._query(filters, expression, start, min(page_size, MAX_QUERY_SIZE))
            page = [p for p in rows if check(p.project_id)]
            if page:
                yield page
            start = _next(meta, start, len(rows))

    async def describe(self) -> dict[str, object]:
        """What a login shows, for an operator's check: user, entity, token lifetime, projects visible."""
        _rows, meta = await self._query([], None, 1, 1)
        c = self.credentials
        return {"api": "rest", "base_url": c.base_url, "user": c.username, "entity": c.entity_id,
                "token_expires_in_s": self._transport.tokens.lifetime, "projects": meta.get("totalCount")}

    async def probe(self) -> None:
        """A cheap authenticated query; ConnectionFailure when the user may not read projects."""
        try:
            await self._query([], None, 1, 1)
        except PermanentError as exc:
            raise ConnectionFailure(f"Intacct probe query failed: {exc.message}", status=exc.status,
                                    errorno=exc.errorno, description=exc.description,
                                    description2=exc.description2) from None

    # -- internals -----------------------------------------------------------------------------

    async def _updates(self, updates: Sequence[UpdateProject]) -> dict[str, FunctionResult]:
        results: dict[str, FunctionResult] = {}
        missing = [u.project_id for u in updates if u.project_id not in self._keys]
        if missing:
            await self.read_projects(missing)  # caches the keys of those that exist
        ready: list[Write] = []
        for u in updates:
            key = self._keys.get(u.project_id)
            if key is None:
                text = f"Cannot update non-existing PROJECT with PROJECTID={u.project_id}."
                results[u.controlid] = FunctionResult(u.controlid, "update", "failure", Outcome.NOT_EXISTING,
                                                      errors=(ErrorDetail("notFound", text, "", ""),))
                continue
            ready.append(Write(u.controlid, "update", u.project_id, {"key": key, **project_body(u.fields)}))
        for chunk in _chunks(ready, self.batch_size):
            results.update((r.controlid, r) for r in await self._writer.send("update", chunk))
        return results

    async def _query_page(self, q: QueryProjects) -> FunctionResult:
        filters, expression, check = like_filters(q.patterns)
        rows, meta = await self._query(filters, expression, q.offset + 1, q.page_size)
        total = _int(meta.get("totalCount"), len(rows))
        remaining = max(0, total - q.offset - len(rows)) if _next(meta, q.offset + 1, len(rows)) else 0
        attrs = {"count": str(len(rows)), "totalcount": str(total), "numremaining": str(remaining)}
        return FunctionResult(q.controlid, "query", "success", Outcome.SUCCESS,
                              projects=tuple(p for p in rows if check(p.project_id)),
                              data_attrs=MappingProxyType(attrs))

    async def _query(self, filters: list[dict[str, Any]], expression: str | None, start: int,
                     size: int) -> tuple[list[IntacctProject], Mapping[str, Any]]:
        body: dict[str, Any] = {"object": PROJECT_OBJECT, "fields": list(READ_FIELDS), "filters": filters,
                                "orderBy": [{"key": "asc"}], "start": start, "size": size}
        if expression:
            body["filterExpression"] = expression
        answer = await self._transport.send("POST", QUERY_PATH, body)
        if not 200 <= answer.status < 300:
            text = answer.error.text()[:300] if answer.error else ""
            raise PermanentError(f"Intacct query refused: HTTP {answer.status} ({text})", status=answer.status,
                                 **error_fields(answer.error))
        doc = answer.body if isinstance(answer.body, Mapping) else {}
        result = doc.get("ia::result")
        meta = doc.get("ia::meta")
        projects: list[IntacctProject] = []
        for row in result if isinstance(result, list) else []:
            if isinstance(row, Mapping) and row.get("id"):
                project = project_from_row(row)
                projects.append(project)
                if project.record_no is not None:
                    self._keys[project.project_id] = str(project.record_no)
        return projects, meta if isinstance(meta, Mapping) else {}


def like_filters(patterns: Sequence[str]) -> tuple[list[dict[str, Any]], str | None, Any]:
    """Query filters for SQL ``like`` patterns (the API has no ``like``), and a client-side re-check."""
    if not patterns:
        return [], None, lambda _id: True
    filters: list[dict[str, Any]] = []
    exact = True
    for pattern in patterns:
        inner = pattern.strip("%")
        plain = "%" not in inner and "_" not in inner
        if plain and pattern.startswith("%") and pattern.endswith("%") and len(pattern) > 1:
            filters.append({"$contains": {"id": inner}})
        elif plain and pattern.endswith("%") and inner:
            filters.append({"$startsWith": {"id": inner}})
        elif plain and pattern.startswith("%") and inner:
            filters.append({"$endsWith": {"id": inner}})
        elif "%" not in pattern and "_" not in pattern:
            filters.append({"$eq": {"id": pattern}})
        else:
            # A wildcard inside (or `_`): narrow by the literal head, then match exactly here.
            head = re.split(r"[%_]", pattern, maxsplit=1)[0]
            filters.append({"$startsWith": {"id": head}} if head else {"$ne": {"id": None}})
            exact = False
    expression = " or ".join(str(i) for i in range(1, len(filters) + 1)) if len(filters) > 1 else None
    if exact:
        return filters, expression, lambda _id: True
    regexes = [_like_regex(p) for p in patterns]
    return filters, expression, lambda project_id: any(r.fullmatch(project_id) for r in regexes)


def _like_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.DOTALL)


def _waves(creates: Sequence[CreateProject]) -> list[list[CreateProject]]:
    """Creates in waves so that a parent created in the same call lands in an earlier request.

    Whether a batch applies its records in array order is not documented.
    """
    waves: list[list[CreateProject]] = []
    left = list(creates)
    while left:
        pending = {f.fields.get("PROJECTID") for f in left}
        wave = [f for f in left if f.fields.get("PARENTID") not in pending] or left  # a cycle: Intacct refuses
        waves.append(wave)
        left = [f for f in left if f not in wave]
    return waves


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _next(meta: Mapping[str, Any], start: int, count: int) -> int:
    """The next page's start, or 0 at the end (Sage's examples use both null and 0 for "no more").

    Paging advances by the rows received, and a misbehaving answer cannot keep it going for ever:
    an empty page that announces more is an error, and so is a start past the announced total.
    """
    if not _int(meta.get("next"), 0):
        return 0
    total = _int(meta.get("totalCount"), -1)
    if count <= 0 or (total >= 0 and start - 1 + count > total + MAX_QUERY_SIZE):
        raise TransientError(f"Intacct's query paging made no progress (start {start}, {count} rows, "
                             f"total {total})", outcome_unknown=False)
    return start + count


def _int(value: object, default: int) -> int:
    if not isinstance(value, int | str) or isinstance(value, bool):
        return default
    try:
        return int(value)
    except ValueError:
        return default
