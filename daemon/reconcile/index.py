"""Both sides of a reconciliation, read page by page into compact indexes (the first step of a run).

100,000 records per side must fit well under 200 MB, so no page object outlives its page: Intacct
projects become `PROJECTID -> (NAME, PARENTID, CUSTOMERID)` tuples whose repeated values (parents,
customers) share one string each; ServiceTitan projects become small tuples; ServiceTitan jobs are
not indexed at all but classified page by page as they stream in, the next page being fetched while
the current one is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

from adapters.errors import TransientError
from adapters.intacct import IntacctProject, QueryProjects
from adapters.port import IntacctPort, raise_for_result
from adapters.servicetitan import Project, ServiceTitanClient
from daemon import logs
from daemon.reconcile.check import Observed
from statemachine.naming import clean_text, literal_prefix, placeholders
from statemachine.settings import FieldMapping

log = logs.get("st_intacct_sync.reconcile")
T = TypeVar("T")

INTACCT_PAGE_SIZE = 2000
ST_PAGE_SIZE = 5000
RETRIES = 4  # per Intacct page; the ServiceTitan client retries by itself


def id_prefixes(mapping: FieldMapping, *, projects: bool = True) -> tuple[str, ...]:
    """The literal beginnings of our PROJECTIDs; ("",) when a template starts with a placeholder.

    `projects=False` (parent mapping off): only the jobs' template, the project side is left out.
    """
    templates = (mapping.job_project_id, mapping.project_project_id) if projects else (mapping.job_project_id,)
    prefixes = {clean_text(literal_prefix(t)).lstrip() for t in templates}
    return ("",) if "" in prefixes else tuple(sorted(prefixes))


def uses_customer_name(*templates: str) -> bool:
    """Whether any of these templates renders the customer's name."""
    return any("customer_name" in placeholders(t) for t in templates)


def to_us(value: datetime) -> int:
    """A time as whole microseconds since the epoch (exact, and smaller than a datetime)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Progress:
    """Pages and records read per side, reported as one line after every page."""

    def __init__(self, report: Callable[[str], None] | None = None) -> None:
        self.report = report
        self.pages = {"intacct": 0, "servicetitan": 0}
        self.records = {"intacct": 0, "servicetitan": 0}
        self.started = time.monotonic()

    def page(self, side: str, records: int) -> None:
        self.pages[side] += 1
        self.records[side] += records
        if self.report is not None:
            self.report(self.line())

    def line(self) -> str:
        st, ia = self.pages["servicetitan"], self.pages["intacct"]
        return (f"read ServiceTitan {self.records['servicetitan']:,} records ({st} page{'' if st == 1 else 's'}), "
                f"Intacct {self.records['intacct']:,} projects ({ia} page{'' if ia == 1 else 's'}) "
                f"in {time.monotonic() - self.started:.0f} s")


class IntacctIndex:
    """Intacct's projects whose PROJECTID starts with one of our prefixes."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes
        self.projects: dict[str, Observed] = {}
        self._shared: dict[str, str] = {}

    def _share(self, value: str | None) -> str | None:
        # Parents and customers repeat across thousands of projects: keep one string of each.
        return None if value is None else self._shared.setdefault(value, value)

    def add(self, page: Iterable[IntacctProject]) -> None:
        """Index one page (`like` also matches `_` and `%` in a prefix loosely: check exactly)."""
        for p in page:
            if p.project_id.startswith(self.prefixes):
                self.projects[p.project_id] = (p.name, self._share(p.parent_id), self._share(p.customer_id))


async def with_retries(call: Callable[[], Awaitable[T]], what: str) -> T:
    """`call()`, again after a short backoff while Intacct answers with transient errors."""
    for attempt in range(1, RETRIES + 1):
        try:
            return await call()
        except TransientError as exc:
            if attempt == RETRIES:
                raise
            wait = max(exc.retry_after or 0.0, 0.5 * 2**attempt)
            log.warning("reconcile_retry", what=what, attempt=attempt, wait_s=wait, error=exc.message)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def read_intacct(intacct: IntacctPort, prefixes: tuple[str, ...], progress: Progress) -> IntacctIndex:
    """Every Intacct project matching our prefixes, page by page (offset paging by RECORDNO)."""
    index = IntacctIndex(prefixes)
    patterns = tuple(f"{p}%" for p in prefixes)
    tag = uuid.uuid4().hex[:8]
    offset = 0
    while True:
        query = QueryProjects(f"reconcile-{tag}-{offset}", patterns, INTACCT_PAGE_SIZE, offset)
        [result] = await with_retries(functools.partial(intacct.execute, [query]), f"Intacct query at offset {offset}")
        raise_for_result(result, "query")
        index.add(result.projects)
        progress.page("intacct", len(result.projects))
        count = _attr(result.data_attrs, "count", len(result.projects))
        if _attr(result.data_attrs, "numremaining", 0) <= 0 or count <= 0:
            return index
        offset += count


def _attr(attrs: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(attrs.get(name, default))
    except (TypeError, ValueError):
        return default


def readable(project_id: str) -> bool:
    """Whether readByName can name this PROJECTID (its keys are comma-separated)."""
    return bool(project_id) and "," not in project_id


async def read_projects_again(intacct: IntacctPort, project_ids: Sequence[str]) -> dict[str, IntacctProject]:
    """Read these PROJECTIDs now (readByName), to confirm drift seen in the listing."""
    keys = [p for p in dict.fromkeys(project_ids) if readable(p)]
    found: dict[str, IntacctProject] = {}
    for start in range(0, len(keys), 2000):
        chunk = keys[start : start + 2000]
        found.update(await with_retries(functools.partial(intacct.read_projects, chunk), "Intacct readByName"))
    return found


class StProject(NamedTuple):
    """A ServiceTitan project as the reconciliation keeps it."""

    number: str
    name: str | None
    customer_id: int | None
    created_us: int
    modified_us: int

    def project(self, st_id: int) -> Project:
        """The adapter's value again, for the ingestor (repairs)."""
        return Project(st_id, self.number, self.name, self.customer_id, None, from_us(self.created_us),
                       from_us(self.modified_us), ())


async def read_st_projects(st: ServiceTitanClient, progress: Progress) -> dict[int, StProject]:
    """Every ServiceTitan project, page by page."""
    index: dict[int, StProject] = {}
    async for page in st.iter_projects(page_size=ST_PAGE_SIZE):
        for p in page:
            index[p.id] = StProject(p.number, p.name, p.customer_id, to_us(p.created_on), to_us(p.modified_on))
        progress.page("servicetitan", len(page))
    return index


async def ahead(pages: AsyncIterator[T]) -> AsyncIterator[T]:
    """Yield the pages of `pages` while the next one is already being fetched."""

    async def fetch() -> tuple[bool, T | None]:
        try:
            return True, await anext(pages)
        except StopAsyncIteration:
            return False, None

    task = asyncio.ensure_future(fetch())
    try:
        while True:
            more, page = await task
            if not more:
                return
            task = asyncio.ensure_future(fetch())
            yield page  # type: ignore[misc]
    finally:
        task.cancel()
        # A page fetched in vain may have failed: the consumer's own exit (or error) is what counts.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()
