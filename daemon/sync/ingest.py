"""From ServiceTitan rows to stored records with their desired Intacct fields.

Shared by the poller (the change feeds), export gating, `sync` and `backfill`: they differ only in
priority and in whether the activation time filters rows. A job's PARENTID needs its project, so a
job's project is fetched and enqueued first when it is not tracked yet — even when it predates the
activation time, because a dependency is not retroactive sync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from adapters.errors import NotFoundError
from adapters.servicetitan import Job, Project, ServiceTitanClient
from daemon import logs
from daemon.config import Config
from daemon.store import Record, RecordKey, RecordUpsert, Store, UpsertResult
from statemachine import JobFacts, ProjectFacts, desired_for_job, desired_for_project
from statemachine.naming import placeholders

log = logs.get("st_intacct_sync.ingest")


@dataclass
class IngestReport:
    """What one call did, for progress output and logs."""

    result: UpsertResult = field(default_factory=UpsertResult)
    skipped: int = 0  # untracked rows that are inactive or older than the activation time
    parents_fetched: int = 0
    missing: list[RecordKey] = field(default_factory=list)  # ids ServiceTitan does not know


def _project_facts(p: Project, customer_name: str | None) -> ProjectFacts:
    return ProjectFacts(p.id, p.number, p.name, p.customer_id, customer_name, p.active)


def _facts_of_record(r: Record) -> ProjectFacts:
    return ProjectFacts(r.st_id, r.st_number or "", r.st_name, r.st_customer_id, r.st_customer_name, r.st_active)


class Ingestor:
    """Converts ST jobs and projects into record upserts and stores them."""

    def __init__(self, store: Store, servicetitan: ServiceTitanClient, config: Callable[[], Config]) -> None:
        self.store = store
        self.st = servicetitan
        self._config = config

    def _needs_customer_names(self) -> bool:
        m = self._config().mapping
        templates = (m.job_project_id, m.job_project_name, m.project_project_id, m.project_name_fallback,
                     m.customer_id)
        return any("customer_name" in placeholders(t) for t in templates)

    async def _customer_names(self, ids: set[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted or not self._needs_customer_names():
            return {}
        customers = await self.st.get_customers(sorted(wanted))
        return {cid: c.name for cid, c in customers.items()}

    async def _filter(
        self, rows: Sequence[Job] | Sequence[Project], kind: str, activation: datetime | None
    ) -> tuple[list[RecordKey], int, set[int]]:
        """Keys that may only update tracked records; how many rows drop out; ids of those kept."""
        if activation is None:
            return [], 0, {r.id for r in rows}
        doubtful = [RecordKey(kind, r.id) for r in rows if not r.active or r.modified_on < activation]
        if not doubtful:
            return [], 0, {r.id for r in rows}
        tracked = await self.store.get_many(doubtful)
        dropped = {k.st_id for k in doubtful if k not in tracked}
        return doubtful, len(dropped), {r.id for r in rows if r.id not in dropped}

    async def projects(
        self,
        projects: Sequence[Project],
        *,
        priority: int = 0,
        activation: datetime | None = None,
        cursor: tuple[str, str] | None = None,
    ) -> IngestReport:
        """Store ST projects (and the feed cursor after them)."""
        report = IngestReport()
        only_tracked, report.skipped, keep = await self._filter(projects, "project", activation)
        kept = [p for p in projects if p.id in keep]
        config = self._config()
        names = await self._customer_names({p.customer_id for p in kept})
        before = await self.store.projects([p.id for p in kept]) if kept else {}
        rows = []
        for p in kept:
            facts = _project_facts(p, names.get(p.customer_id) if p.customer_id is not None else None)
            rows.append(RecordUpsert(
                "project", p.id, p.number, p.name, p.customer_id, facts.customer_name, None, p.active,
                p.created_on, p.modified_on, desired_for_project(facts, config.settings, config.mapping), priority,
            ))
        report.result = await self.store.upsert(rows, cursor=cursor, only_tracked=only_tracked)
        # Jobs render their project's number (PARENTID) and maybe its name: follow those changes.
        changed = [p for p in kept if p.id in before
                   and (before[p.id].st_number, before[p.id].st_name) != (p.number, p.name)]
        if changed:
            await self._refresh_jobs_of(changed, names)
        return report

    async def _refresh_jobs_of(self, projects: Sequence[Project], names: dict[int, str]) -> None:
        config = self._config()
        parents = {
            p.id: _project_facts(p, names.get(p.customer_id) if p.customer_id is not None else None)
            for p in projects
        }
        rows = []
        for job in await self.store.jobs_of_projects(list(parents)):
            facts = JobFacts(job.st_id, job.st_number or "", job.st_project_id, job.st_customer_id,
                             job.st_customer_name, job.st_active)
            parent = parents.get(job.st_project_id) if job.st_project_id is not None else None
            rows.append(RecordUpsert(
                "job", job.st_id, job.st_number, job.st_name, job.st_customer_id, job.st_customer_name,
                job.st_project_id, job.st_active, job.st_created_on, job.st_modified_on,
                desired_for_job(facts, parent, config.settings, config.mapping), job.priority,
            ))
        if rows:
            result = await self.store.upsert(rows)
            log.info("jobs_follow_project_change", projects=len(parents), requeued=len(result.requeued))

    async def jobs(
        self,
        jobs: Sequence[Job],
        *,
        priority: int = 0,
        activation: datetime | None = None,
        cursor: tuple[str, str] | None = None,
    ) -> IngestReport:
        """Store ST jobs (and the feed cursor after them), fetching untracked parent projects first."""
        report = IngestReport()
        only_tracked, report.skipped, keep = await self._filter(jobs, "job", activation)
        kept = [j for j in jobs if j.id in keep]
        config = self._config()
        parents = await self._parents({j.project_id for j in kept if j.project_id is not None}, priority, report)
        names = await self._customer_names({j.customer_id for j in kept})
        rows = []
        for j in kept:
            customer_name = names.get(j.customer_id) if j.customer_id is not None else None
            facts = JobFacts(j.id, j.job_number, j.project_id, j.customer_id, customer_name, j.active)
            parent = parents.get(j.project_id) if j.project_id is not None else None
            rows.append(RecordUpsert(
                "job", j.id, j.job_number, None, j.customer_id, customer_name, j.project_id, j.active,
                j.created_on, j.modified_on, desired_for_job(facts, parent, config.settings, config.mapping),
                priority,
            ))
        report.result = await self.store.upsert(rows, cursor=cursor, only_tracked=only_tracked)
        return report

    async def _parents(self, ids: set[int], priority: int, report: IngestReport) -> dict[int, ProjectFacts]:
        if not ids:
            return {}
        known = await self.store.projects(sorted(ids))
        facts = {pid: _facts_of_record(r) for pid, r in known.items()}
        missing = sorted(ids - set(known))
        if missing:
            fetched = await self.st.get_projects(missing)
            if fetched:
                sub = await self.projects(fetched, priority=max(priority, 1))
                report.parents_fetched += len(sub.result.inserted)
                for r in (await self.store.projects([p.id for p in fetched])).values():
                    facts[r.st_id] = _facts_of_record(r)
            unknown = set(missing) - {p.id for p in fetched}
            if unknown:
                log.warning("parent_projects_unknown_in_servicetitan", project_ids=sorted(unknown)[:20])
        return facts

    async def fetch(self, keys: Sequence[RecordKey], *, priority: int) -> IngestReport:
        """Read these records from ServiceTitan by id and store them (export gating, `sync`)."""
        report = IngestReport()
        job_ids = sorted({k.st_id for k in keys if k.kind == "job"})
        project_ids = sorted({k.st_id for k in keys if k.kind == "project"})
        if project_ids:
            projects = await self.st.get_projects(project_ids)
            found = {p.id for p in projects}
            report.missing += [RecordKey("project", i) for i in project_ids if i not in found]
            if projects:
                sub = await self.projects(projects, priority=priority)
                report.result = sub.result
        if job_ids:
            jobs = await self.st.get_jobs(job_ids)
            found = {j.id for j in jobs}
            report.missing += [RecordKey("job", i) for i in job_ids if i not in found]
            if jobs:
                sub = await self.jobs(jobs, priority=priority)
                report.parents_fetched += sub.parents_fetched
                report.result = _merge(report.result, sub.result)
        return report

    async def fetch_one(self, key: RecordKey, *, priority: int) -> bool:
        """`fetch` for one record; False when ServiceTitan does not know it."""
        try:
            report = await self.fetch([key], priority=priority)
        except NotFoundError:
            return False
        return key not in report.missing


def _merge(a: UpsertResult, b: UpsertResult) -> UpsertResult:
    return UpsertResult(a.inserted + b.inserted, a.requeued + b.requeued, a.updated + b.updated,
                        a.ignored + b.ignored)
