"""From ServiceTitan rows to stored records with their desired Intacct fields.

Shared by the poller (the change feeds), export gating, `sync` and `backfill`: they differ only in
priority and in whether the activation time filters rows. A job's PARENTID needs its project, so a
job's project is fetched and enqueued first when it is not tracked yet — even when it predates the
activation time, because a dependency is not retroactive sync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
    return ProjectFacts(r.st_id, r.st_number or "", r.st_name, r.st_customer_id, r.st_customer_name, r.st_active,
                        intacct_project_id=r.fixed_id)


def _job_facts(r: Record) -> JobFacts:
    return JobFacts(r.st_id, r.st_number or "", r.st_project_id, r.st_customer_id, r.st_customer_name, r.st_active)


@dataclass
class RederiveReport:
    """What recomputing the desired fields of every tracked record did (after a settings change)."""

    records: int = 0
    requeued: int = 0  # their Intacct project must change: pending again
    kept_id: int = 0  # in Intacct already: they keep their PROJECTID whatever the templates render now


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

    async def ingest_projects(
        self,
        projects: Sequence[Project],
        *,
        priority: int = 0,
        activation: datetime | None = None,
        cursor: tuple[str, str] | None = None,
    ) -> IngestReport:
        """Store ST projects (and the feed cursor after them), with the jobs that render them.

        Parent mapping off: projects are not stored at all (nothing goes to Intacct for them); the
        page still refreshes the jobs whose templates render a project's number or name.
        """
        report = IngestReport()
        config = self._config()
        synced = config.settings.syncs("project")
        if synced:
            only_tracked, report.skipped, keep = await self._filter(projects, "project", activation)
        else:
            only_tracked, keep = [], {p.id for p in projects}
        kept = [p for p in projects if p.id in keep]
        names = await self._customer_names({p.customer_id for p in kept})
        before = await self.store.projects([p.id for p in kept]) if kept else {}
        rows = []
        parents: dict[int, ProjectFacts] = {}
        for p in kept:
            prior = before.get(p.id)
            facts = _project_facts(p, names.get(p.customer_id) if p.customer_id is not None else None)
            if prior is not None and prior.intacct_confirmed:
                facts = replace(facts, intacct_project_id=prior.intacct_project_id)
            if synced:
                rows.append(RecordUpsert(
                    "project", p.id, p.number, p.name, p.customer_id, facts.customer_name, None, p.active,
                    p.created_on, p.modified_on, desired_for_project(facts, config.settings, config.mapping),
                    priority,
                ))
            # Jobs render their project's number (PARENTID) and maybe its name: follow those changes.
            # A project stored for the first time may already have jobs (synced while parent mapping
            # was off): they get their PARENTID now.
            if (prior is not None and (prior.st_number, prior.st_name) != (p.number, p.name)) or (
                    prior is None and (synced or self._jobs_render_projects())):
                parents[p.id] = facts
        # One transaction with the page and its cursor: the refresh cannot be lost in between.
        report.result = await self.store.upsert(
            rows, cursor=cursor, only_tracked=only_tracked, jobs_of=list(parents),
            derive_jobs=lambda jobs: self._job_rows(jobs, parents))
        return report

    def _jobs_render_projects(self) -> bool:
        m = self._config().mapping
        return any(placeholders(t) & {"project_number", "project_name"} for t in (m.job_project_id, m.job_project_name))

    def _job_rows(self, jobs: Sequence[Record], parents: dict[int, ProjectFacts]) -> list[RecordUpsert]:
        """Stored jobs with their desired fields derived again (from the given or stored parents)."""
        config = self._config()
        rows = []
        for job in jobs:
            parent = parents.get(job.st_project_id) if job.st_project_id is not None else None
            rows.append(RecordUpsert(
                "job", job.st_id, job.st_number, job.st_name, job.st_customer_id, job.st_customer_name,
                job.st_project_id, job.st_active, job.st_created_on, job.st_modified_on,
                desired_for_job(_job_facts(job), parent, config.settings, config.mapping), 0,
            ))
        return rows

    async def rederive(self, page_size: int = 1000) -> RederiveReport:
        """Recompute every tracked record's desired fields from its stored facts (settings or templates
        changed): what changes goes back to pending; records Intacct has keep their PROJECTID.

        Only stored facts are used: a job whose project is not tracked (parent mapping was off)
        gets its PARENTID when ServiceTitan changes it, or from a reconciliation repair.
        """
        config = self._config()
        report = RederiveReport()
        after: tuple[str, int] = ("", 0)
        while page := await self.store.records_after(after, page_size):
            after = (page[-1].kind, page[-1].st_id)
            jobs = [r for r in page if r.kind == "job"]
            parents = {pid: _facts_of_record(r) for pid, r in (await self.store.projects(
                sorted({j.st_project_id for j in jobs if j.st_project_id is not None}))).items()}
            if self._jobs_render_projects():
                # A job whose project is not tracked would render it empty: it keeps what it has.
                jobs = [j for j in jobs if j.st_project_id is None or j.st_project_id in parents]
            rows = self._job_rows(jobs, parents)
            if config.settings.syncs("project"):
                rows += [RecordUpsert(
                    "project", r.st_id, r.st_number, r.st_name, r.st_customer_id, r.st_customer_name, None,
                    r.st_active, r.st_created_on, r.st_modified_on,
                    desired_for_project(replace(_facts_of_record(r), intacct_project_id=None), config.settings,
                                        config.mapping), 0)
                    for r in page if r.kind == "project"]
            stored = {r.key: r for r in page}
            report.records += len(rows)
            report.kept_id += sum(1 for row in rows if stored[row.key].intacct_confirmed
                                  and row.desired.project_id != stored[row.key].intacct_project_id)
            report.requeued += len((await self.store.upsert(rows)).requeued)
        return report

    async def ingest_jobs(
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
        if missing and not self._config().settings.syncs("project"):
            # Parent mapping off: the project is never stored or sent; its facts are read only when a
            # job template renders them.
            if self._jobs_render_projects():
                for p in await self.st.get_projects(missing):
                    facts[p.id] = _project_facts(p, None)
            return facts
        if missing:
            fetched = await self.st.get_projects(missing)
            if fetched:
                sub = await self.ingest_projects(fetched, priority=max(priority, 1))
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
                sub = await self.ingest_projects(projects, priority=priority)
                report.result = sub.result
        if job_ids:
            jobs = await self.st.get_jobs(job_ids)
            found = {j.id for j in jobs}
            report.missing += [RecordKey("job", i) for i in job_ids if i not in found]
            if jobs:
                sub = await self.ingest_jobs(jobs, priority=priority)
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
