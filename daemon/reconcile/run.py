"""One reconciliation: read both sides, classify every record, repair what it may.

Order: Intacct's projects and ServiceTitan's projects are read at the same time; then the projects
are checked (repairs of parents are queued before their jobs'), then the jobs page by page as they
are listed; Intacct projects that no ServiceTitan record claimed are the orphans. Drift seen in the
listing is read again by PROJECTID before it is reported or repaired: a listing takes a while, and
the workers keep syncing meanwhile.

Customer names (for templates with {customer_name}) come from the tracked records where the
customer is the same, and from batched ServiceTitan lookups otherwise; a job's parent comes from the
ServiceTitan projects of this run (else the store, else ServiceTitan by id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.errors import AdapterError
from adapters.intacct import IntacctProject
from adapters.port import IntacctPort
from adapters.servicetitan import Job, ServiceTitanClient
from daemon import logs
from daemon.reconcile.check import Actions, Observed, classify, describe, error_words
from daemon.reconcile.index import (
    ST_PAGE_SIZE,
    IntacctIndex,
    Progress,
    StProject,
    ahead,
    id_prefixes,
    read_intacct,
    read_projects_again,
    read_st_projects,
    readable,
    to_us,
    uses_customer_name,
)
from daemon.reconcile.outcome import Outcome, RunSettings
from daemon.store import DRIFT, NOT_EXCEPTIONS, Category, Finding, RecordKey, Requeue, Store, Tracked
from daemon.sync import Ingestor, project_fields
from statemachine import Desired, JobFacts, ProjectFacts, State, desired_for_job, desired_for_project
from statemachine.identity import keep_identity

log = logs.get("st_intacct_sync.reconcile")
REPAIR_PRIORITY = 5


@dataclass(slots=True)
class _Item:
    """One ServiceTitan record while its page is checked."""

    kind: str
    st_id: int
    number: str
    changed_us: int  # the later of createdOn and modifiedOn
    desired: Desired
    tracked: Tracked | None
    in_scope: bool
    parent_st_id: int | None = None
    job: Job | None = None
    actual: Observed | None = None
    fresh: IntacctProject | None = None  # read again by PROJECTID
    category: Category = Category.MATCHED


class Run:
    """Executes one reconciliation; `execute()` may be called once."""

    def __init__(self, *, store: Store, servicetitan: ServiceTitanClient, intacct: IntacctPort,
                 ingestor: Ingestor, settings: RunSettings, started_at: datetime,
                 progress: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.st = servicetitan
        self.intacct = intacct
        self.ingestor = ingestor
        self.cfg = settings
        self.started_at = started_at
        self.progress = Progress(progress)
        self.out = Outcome()
        # Parent mapping off: projects are not synced, the project side is left out (no missing, no orphans).
        self._projects_on = settings.settings.syncs("project")
        self.index = IntacctIndex(id_prefixes(settings.mapping, projects=self._projects_on))
        self._fixed_parents: dict[int, str | None] = {}  # project st_id: the PROJECTID Intacct has
        self.st_projects: dict[int, StProject] = {}
        self._activated_us = None if settings.activated_at is None else to_us(settings.activated_at)
        self._customer_names: dict[int, str | None] = {}
        self._project_customer: dict[int, str | None] = {}  # only when project IDs render customer names
        self._extra_parents: dict[int, ProjectFacts | None] = {}
        m = settings.mapping
        self._project_names = uses_customer_name(m.project_project_id, m.project_name_fallback, m.customer_id)
        self._job_names = uses_customer_name(m.job_project_id, m.job_project_name, m.customer_id)
        self._parent_names = uses_customer_name(m.project_project_id)

    async def execute(self) -> Outcome:
        """Read, classify, repair; the findings carry no `since` yet (the caller knows the history)."""
        started = time.monotonic()
        if self.index.prefixes == ("",):
            log.warning("reconcile_unprefixed_templates",
                        note="a PROJECTID template starts with a placeholder: every Intacct project is compared, "
                             "and projects not made by this daemon are reported as orphans")
        async with asyncio.TaskGroup() as group:
            intacct = group.create_task(self._timed("read_intacct", read_intacct(self.intacct, self.index.prefixes,
                                                                                  self.progress)))
            projects = group.create_task(self._timed("read_servicetitan_projects",
                                                     read_st_projects(self.st, self.progress)))
        self.index, self.st_projects = intacct.result(), projects.result()
        t = time.monotonic()
        ids = list(self.st_projects) if self._projects_on else []
        for start in range(0, len(ids), ST_PAGE_SIZE):
            await self._projects(ids[start : start + ST_PAGE_SIZE])
        self.out.timings["projects"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        async for page in ahead(self.st.iter_jobs(page_size=ST_PAGE_SIZE)):
            self.progress.page("servicetitan", len(page))
            await self._jobs(page)
        self.out.timings["jobs"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        await self._orphans()
        self.out.timings["orphans"] = round(time.monotonic() - t, 3)
        self.out.timings["total"] = round(time.monotonic() - started, 3)
        self.out.pages, self.out.records_read = dict(self.progress.pages), dict(self.progress.records)
        return self.out

    async def _timed(self, name: str, coro: Any) -> Any:
        t = time.monotonic()
        result = await coro
        self.out.timings[name] = round(time.monotonic() - t, 3)
        return result

    def _in_scope(self, tracked: Tracked | None, changed_us: int) -> bool:
        if self.cfg.scope == "all" or tracked is not None:
            return True
        return self._activated_us is not None and changed_us >= self._activated_us

    # ---- customer names and parents --------------------------------------------------------------

    async def _names(self, wanted: Sequence[tuple[int, int | None]], tracked: dict[int, Tracked]
                     ) -> dict[int, str | None]:
        """Customer names by ST record id: the tracked record's if the customer is the same, else ST's."""
        out: dict[int, str | None] = {}
        fetch: set[int] = set()
        for st_id, cid in wanted:
            t = tracked.get(st_id)
            if cid is None:
                out[st_id] = None
            elif t is not None and t.customer_id == cid and t.customer_name is not None:
                out[st_id] = t.customer_name
            elif cid not in self._customer_names:
                fetch.add(cid)
        if fetch:
            found = await self.st.get_customers(sorted(fetch))
            for cid in fetch:
                self._customer_names[cid] = found[cid].name if cid in found else None
        for st_id, cid in wanted:
            if st_id not in out:
                out[st_id] = self._customer_names.get(cid) if cid is not None else None
        return out

    def _parent(self, project_id: int | None) -> ProjectFacts | None:
        if project_id is None:
            return None
        row = self.st_projects.get(project_id)
        if row is None:
            return self._extra_parents.get(project_id)
        return ProjectFacts(project_id, row.number, row.name, row.customer_id, self._project_customer.get(project_id),
                            intacct_project_id=self._fixed_parents.get(project_id))

    async def _parents_outside_listing(self, ids: set[int]) -> None:
        """Projects created after the listing (or never listed): from the store, else ServiceTitan."""
        wanted = sorted(i for i in ids if i not in self.st_projects and i not in self._extra_parents)
        if not wanted:
            return
        for pid, r in (await self.store.projects(wanted)).items():
            self._extra_parents[pid] = ProjectFacts(pid, r.st_number or "", r.st_name, r.st_customer_id,
                                                    r.st_customer_name, intacct_project_id=r.fixed_id)
        rest = [i for i in wanted if i not in self._extra_parents]
        if rest:
            fetched = {p.id: p for p in await self.st.get_projects(rest)}
            names = await self._names([(p.id, p.customer_id) for p in fetched.values()], {}) \
                if self._parent_names else {}
            for pid in rest:
                p = fetched.get(pid)
                self._extra_parents[pid] = None if p is None else ProjectFacts(
                    p.id, p.number, p.name, p.customer_id, names.get(p.id))

    # ---- projects and jobs -----------------------------------------------------------------------

    async def _projects(self, ids: list[int]) -> None:
        tracked = await self.store.runs.tracked("project", ids)
        names = await self._names([(i, self.st_projects[i].customer_id) for i in ids], tracked) \
            if self._project_names else {}
        items = []
        for st_id in ids:
            row = self.st_projects[st_id]
            t = tracked.get(st_id)
            name = names.get(st_id)
            if self._parent_names:
                self._project_customer[st_id] = name
            facts = ProjectFacts(st_id, row.number, row.name, row.customer_id, name, t.active if t else True)
            changed = max(row.created_us, row.modified_us)
            # Compared under the PROJECTID Intacct has for it, whatever the templates render now.
            self._fixed_parents[st_id] = fixed = None if t is None else t.fixed_id
            desired = keep_identity(desired_for_project(facts, self.cfg.settings, self.cfg.mapping), fixed)
            items.append(_Item("project", st_id, row.number, changed, desired, t, self._in_scope(t, changed)))
        await self._check(items)

    async def _jobs(self, page: Sequence[Job]) -> None:
        tracked = await self.store.runs.tracked("job", [j.id for j in page])
        await self._parents_outside_listing({j.project_id for j in page if j.project_id is not None})
        settings, mapping = self.cfg.settings, self.cfg.mapping
        id_needs_name = uses_customer_name(mapping.job_project_id)
        if self._job_names:
            # Only records that will be compared need their customer's name: those in scope, and
            # those Intacct holds. That takes the PROJECTID first, which needs no name unless its
            # own template renders one.
            needing = []
            for j in page:
                t = tracked.get(j.id)
                if id_needs_name or self._in_scope(t, _changed(j)):
                    needing.append(j)
                    continue
                facts = JobFacts(j.id, j.job_number, j.project_id, j.customer_id, None)
                pid = (t.fixed_id if t else None) or desired_for_job(
                    facts, self._parent(j.project_id), settings, mapping).project_id
                if pid in self.index.projects:
                    needing.append(j)
            names = await self._names([(j.id, j.customer_id) for j in needing], tracked)
        else:
            names = {}
        items = []
        for j in page:
            t = tracked.get(j.id)
            facts = JobFacts(j.id, j.job_number, j.project_id, j.customer_id, names.get(j.id), t.active if t else True)
            changed, fixed = _changed(j), None if t is None else t.fixed_id
            desired = keep_identity(desired_for_job(facts, self._parent(j.project_id), settings, mapping), fixed)
            items.append(_Item("job", j.id, j.job_number, changed, desired, t,
                               self._in_scope(t, changed), parent_st_id=j.project_id, job=j))
        await self._check(items)

    async def _check(self, items: list[_Item]) -> None:
        """Classify a page of records, confirm their drift, record findings and queue repairs."""
        doubtful = []
        for item in items:
            # Claimed: what is left in the index at the end is unknown to ServiceTitan (orphans).
            item.actual = self.index.projects.pop(item.desired.project_id, None)
            item.category = self._classify(item)
            if item.category in DRIFT:
                doubtful.append(item)
        if doubtful:
            fresh = await read_projects_again(self.intacct, [i.desired.project_id for i in doubtful])
            for item in doubtful:
                if not readable(item.desired.project_id):
                    continue  # readByName cannot name it: the listing's word stands
                item.fresh = fresh.get(item.desired.project_id)
                item.actual = None if item.fresh is None else (item.fresh.name, item.fresh.parent_id,
                                                                item.fresh.customer_id)
                item.category = self._classify(item)
        repairs: list[_Item] = []
        for item in items:
            self.out.counts[item.category.value] += 1
            if item.category is Category.OUTSIDE:
                self.out.outside.add(item.changed_us)
            elif item.category in DRIFT and item.in_scope and self.cfg.repair and (
                    item.tracked is None or item.tracked.state is State.SYNCED):
                repairs.append(item)
            elif item.category not in NOT_EXCEPTIONS:
                self._finding(item, *self._no_repair(item))
        if repairs:
            await self._repair(repairs)

    def _classify(self, item: _Item) -> Category:
        t = item.tracked
        return classify(item.desired, item.actual, state=None if t is None else t.state,
                        active=True if t is None else t.active, in_scope=item.in_scope)

    def _no_repair(self, item: _Item) -> tuple[str, bool]:
        """The action for an exception that is not repaired now, and whether a person must look."""
        t = item.tracked
        if item.category is Category.FAILED:
            return Actions.failed(item.kind, item.st_id), True
        if item.category is Category.BLOCKED:
            return Actions.BLOCKED, True
        if not item.in_scope:
            return Actions.outside_scope(item.kind, item.st_id), True
        if t is not None and t.state in (State.PENDING, State.SYNCING):
            self.out.actions["already_queued"] += 1
            return Actions.ALREADY_QUEUED, False
        self.out.actions["not_repaired"] += 1
        return Actions.REPAIR_OFF, True

    def _finding(self, item: _Item, action: str, attention: bool) -> None:
        t = item.tracked
        if item.category is Category.FAILED:
            detail = f"Intacct refused it: {error_words(t.last_error if t else None)}"
        elif item.category is Category.BLOCKED:
            detail = f"The Intacct connection is in error: {error_words(t.last_error if t else None)}"
        else:
            detail = describe(item.category, item.desired, item.actual, kind=item.kind,
                              parent_st_id=item.parent_st_id, was_synced=t is not None and t.state is State.SYNCED)
        since = t.state_changed_at if t is not None and item.category in (Category.FAILED, Category.BLOCKED) \
            else None
        self.out.findings.append(Finding(
            item.category, item.kind, item.st_id, item.number, item.desired.name, item.desired.project_id,
            None if item.actual is None else item.actual[0], detail, action, attention, since,
        ))

    # ---- repairs ---------------------------------------------------------------------------------

    async def _repair(self, items: list[_Item]) -> None:
        """Queue repairs: tracked records are requeued with what Intacct holds, others ingested."""
        tracked = [i for i in items if i.tracked is not None]
        fresh_facts = [i for i in tracked if i.tracked is not None and i.tracked.desired_hash != i.desired.digest()]
        untracked = [i for i in items if i.tracked is None]
        done: dict[RecordKey, str] = {}
        by_category: dict[Category, list[_Item]] = {}
        for item in tracked:
            by_category.setdefault(item.category, []).append(item)
        for category, group in by_category.items():
            moved = set(await self.store.requeue(
                [Requeue(RecordKey(i.kind, i.st_id), None if i.fresh is None else project_fields(i.fresh),
                         was_read=True) for i in group],
                reason=f"reconcile: {category.value}", priority=REPAIR_PRIORITY))
            for i in group:
                key = RecordKey(i.kind, i.st_id)
                if key in moved:
                    done[key] = Actions.QUEUED_RECREATE if i.actual is None else Actions.QUEUED_CORRECT
                else:  # it changed meanwhile (ServiceTitan or a worker): pending again already
                    done[key] = Actions.ALREADY_QUEUED
        errors: dict[RecordKey, str] = {}
        # ServiceTitan changed without the feed telling (a customer renamed, new templates): the
        # stored desired fields are refreshed too, so the worker sends what this run expects.
        for group in (fresh_facts, untracked):
            if group:
                await self._ingest(group, done, errors)
        for item in items:
            key = RecordKey(item.kind, item.st_id)
            if key in errors:
                self.out.actions["repair_failed"] += 1
                self._finding(item, Actions.repair_failed(errors[key]), True)
                continue
            action = done.get(key, Actions.ALREADY_QUEUED)
            self.out.actions["already_queued" if action == Actions.ALREADY_QUEUED else "queued"] += 1
            self._finding(item, action, False)

    async def _ingest(self, items: list[_Item], done: dict[RecordKey, str], errors: dict[RecordKey, str]) -> None:
        """Store fresh ServiceTitan facts (new records are inserted pending, parents first)."""
        projects = [self.st_projects[i.st_id].project(i.st_id) for i in items if i.kind == "project"]
        jobs = [i.job for i in items if i.job is not None]
        queued: set[RecordKey] = set()
        try:
            if projects:
                report = await self.ingestor.ingest_projects(projects, priority=REPAIR_PRIORITY)
                queued.update(report.result.inserted, report.result.requeued)
            if jobs:
                report = await self.ingestor.ingest_jobs(jobs, priority=REPAIR_PRIORITY)
                queued.update(report.result.inserted, report.result.requeued)
        except AdapterError as exc:
            log.warning("reconcile_repair_failed", records=len(items), error=exc.message)
            for item in items:
                errors.setdefault(RecordKey(item.kind, item.st_id), exc.message)
            return
        for item in items:
            key = RecordKey(item.kind, item.st_id)
            if key not in done:  # a requeue above already said what happened to it
                queued_as = Actions.QUEUED_CREATE if item.actual is None else Actions.QUEUED_CORRECT
                done[key] = queued_as if key in queued else Actions.ALREADY_QUEUED

    # ---- orphans ---------------------------------------------------------------------------------

    async def _orphans(self) -> None:
        left = list(self.index.projects)
        candidates: list[str] = []
        for start in range(0, len(left), 5000):
            chunk = left[start : start + 5000]
            owned = await self.store.runs.tracked_intacct_ids(chunk)  # ServiceTitan listed them after us
            candidates += [p for p in chunk if p not in owned]
        fresh = await read_projects_again(self.intacct, candidates) if candidates else {}
        for pid in candidates:
            p = fresh.get(pid)
            if p is None and readable(pid):
                continue  # deleted meanwhile
            name = p.name if p is not None else self.index.projects[pid][0]
            parent = p.parent_id if p is not None else self.index.projects[pid][1]
            self.out.counts[Category.ORPHAN.value] += 1
            detail = ("This Intacct project's ID follows the naming pattern of synced projects, but no "
                      "ServiceTitan job or project has it")
            detail += f" (its parent is {parent})." if parent else "."
            self.out.findings.append(Finding(Category.ORPHAN, None, None, None, None, pid, name, detail,
                                             Actions.ORPHAN, True))
        self.index.projects.clear()


def _changed(job: Job) -> int:
    return to_us(max(job.created_on, job.modified_on))
