"""What `st-intacct-sync demo` shows: progress until everything is synced, a summary, then some life.

It reads the daemon the way an operator would (`GET /status`, the bearer token on POST) and looks
into the simulators in-process (their data is the "real world" here): the Intacct projects that
exist, and ServiceTitan changes made every ~10 s so that `/status` keeps moving.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import aiohttp

from daemon.config import Config
from daemon.http import render_status
from simulators import intacct as ia_sim
from simulators import servicetitan as st_sim
from statemachine import STORED_STATES, State

if TYPE_CHECKING:
    from daemon.supervisor import Daemon

LIFE_EVERY_S = 10.0
FOLLOW_TIMEOUT_S = 60.0
SAMPLE_PARENTS, SAMPLE_CHILDREN = 2, 3
_QUEUE = tuple(s.value for s in STORED_STATES)
PENDING, SYNCING, SYNCED, BLOCKED, FAILED = (
    s.value for s in (State.PENDING, State.SYNCING, State.SYNCED, State.BLOCKED, State.FAILED))


@dataclass
class Simulators:
    """Both simulators running in this process."""

    servicetitan: st_sim.SimState
    intacct: ia_sim.SimState
    tenant_id: int
    servicetitan_url: str
    intacct_url: str

    @property
    def tenant(self) -> st_sim.TenantData:
        return self.servicetitan.tenant(self.tenant_id)


class Console:
    """Lines for a person: a progress line refreshes in place on a terminal, one line a second otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._open_progress = False
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")  # an ASCII-only terminal gets '?' rather than a crash

    def line(self, text: str = "") -> None:
        self._close_progress()
        self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, text: str) -> None:
        if not self.tty:
            self.line(text)
            return
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._open_progress = True

    def _close_progress(self) -> None:
        if self._open_progress:
            self.stream.write("\n")
            self._open_progress = False


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def _short(text: str | None, width: int) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 1] + "…"


class Show:
    """The demo's output, from the daemon's start until Ctrl-C (then it is cancelled)."""

    def __init__(self, console: Console, daemon: Daemon, sims: Simulators, config: Config, token: str,
                 ready: asyncio.Event) -> None:
        self.out = console
        self.daemon = daemon
        self.sims = sims
        self.config = config
        self.token = token
        self.ready = ready
        self.failed = False
        host = config.http.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        self.base_url = f"http://[{host}]:{config.http.port}" if ":" in host else f"http://{host}:{config.http.port}"
        # What to type in the hints: `localhost:8080` when the daemon listens on loopback.
        self.curl_base = f"localhost:{config.http.port}" if config.http.loopback else self.base_url
        self.http: aiohttp.ClientSession | None = None
        self.activated_at: str | None = None
        self._followers: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as http:
                self.http = http
                await self._startup()
                expected = self._touch_everything()
                await self._progress(expected)
                await self._summary()
                await self._reconciliation()
                await self._life()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed = True
            self.out.line(f"st-intacct-sync demo: the demo's output failed: {type(exc).__name__}: {exc}")
            raise
        finally:
            for task in self._followers:
                task.cancel()
            await asyncio.gather(*self._followers, return_exceptions=True)

    async def status(self) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.get(f"{self.base_url}/status") as response:
            response.raise_for_status()
            doc: dict[str, Any] = await response.json()
            return doc

    # ---- start-up ---------------------------------------------------------------------------------

    async def _startup(self) -> None:
        started = time.monotonic()
        database_announced = False
        while not self.ready.is_set():
            if not database_announced and self.daemon.dsn:
                database_announced = True
                self.out.line(f"  embedded PostgreSQL up in {time.monotonic() - started:.1f} s "
                              "(Unix socket in the state dir; no TCP port, so 127.0.0.1:5432 is left alone)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), 0.1)
        doc = await self.status()
        conns = doc["connections"]
        self.out.line(f"  daemon up in {time.monotonic() - started:.1f} s: {self.base_url} "
                      f"(Intacct {conns['intacct']['state']}, ServiceTitan {conns['servicetitan']['state']})")
        self.activated_at = doc["settings"].get("auto_sync_activated_at")

    def _touch_everything(self) -> int:
        """Update every project and job in ServiceTitan after the activation time; returns how many."""
        tenant = self.sims.tenant
        projects = [p for p in tenant.projects.values() if p.active]
        jobs = [j for j in tenant.jobs.values() if j.active]
        for project in projects:
            tenant.update_project(project.id, {"status": project.status})
        for job in jobs:
            tenant.update_job(job.id, {"jobStatus": job.job_status})
        self.out.line()
        self.out.line(f"Automatic sync was activated at {self.activated_at}. It is not retroactive, so the office")
        self.out.line(f"now updates every project and job in ServiceTitan: {len(projects)} projects and {len(jobs)} "
                      f"jobs to sync (polled every {self.config.servicetitan.poll_interval.total_seconds():g} s).")
        return len(projects) + len(jobs)

    # ---- progress until everything is synced ------------------------------------------------------

    async def _progress(self, expected: int) -> None:
        started = time.monotonic()
        while True:
            queue = (await self.status())["queue"]
            tracked = sum(int(queue.get(state, 0)) for state in _QUEUE)
            elapsed = time.monotonic() - started
            self.out.progress(
                f"[{elapsed:3.0f} s] pending {queue[PENDING]}  syncing {queue[SYNCING]}  "
                f"synced {queue[SYNCED]}  blocked {queue[BLOCKED]}  failed {queue[FAILED]}"
                f"  | Intacct projects {len(self.sims.intacct.projects)}"
            )
            busy = queue[PENDING] + queue[SYNCING] + queue[BLOCKED]
            if tracked >= expected and busy == 0:
                break
            await asyncio.sleep(1.0)
        self.out.line()
        kinds = f"{len(self.sims.tenant.projects)} projects, {len(self.sims.tenant.jobs)} jobs"
        if queue[FAILED]:
            self.out.line(f"every record settled in {elapsed:.1f} s: {queue[SYNCED]} synced, {queue[FAILED]} "
                          f"failed ({kinds}; see recent failures below)")
        else:
            self.out.line(f"all {queue[SYNCED]} records synced in {elapsed:.1f} s ({kinds}); Intacct now holds "
                          f"{len(self.sims.intacct.projects)} projects")

    # ---- the summary ------------------------------------------------------------------------------

    async def _summary(self) -> None:
        self.out.line()
        self.out.line("GET /status:")
        for line in render_status(await self.status()).splitlines():
            self.out.line(f"  {line}")
        self.out.line()
        self.out.line("Intacct PROJECT records, a sample (jobs roll up under their project through PARENTID):")
        rows = [("PROJECTID", "NAME", "PARENTID", "CUSTOMERID")]
        rows += [(p.project_id, _short(p.name, 48), p.parent_id or "-", p.customer_id or "-") for p in self._sample()]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            self.out.line("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        self._hints()

    def _sample(self) -> list[ia_sim.Project]:
        projects = list(self.sims.intacct.projects)
        children: dict[str, list[ia_sim.Project]] = {}
        for project in projects:
            if project.parent_id:
                children.setdefault(project.parent_id, []).append(project)
        parents = sorted((p for p in projects if p.project_id in children),
                         key=lambda p: (-len(children[p.project_id]), p.project_id))[:SAMPLE_PARENTS]
        rows: list[ia_sim.Project] = []
        for parent in sorted(parents, key=lambda p: p.project_id):
            rows.append(parent)
            rows += sorted(children[parent.project_id], key=lambda p: p.project_id)[:SAMPLE_CHILDREN]
        job_prefix = self.config.mapping.job_project_id.split("{", 1)[0]
        lone = [p for p in projects if p.parent_id is None and p.project_id.startswith(job_prefix)]
        return rows + sorted(lone, key=lambda p: p.project_id)[:1]

    def _hints(self) -> None:
        tenant = self.sims.tenant
        job = min(tenant.jobs) if tenant.jobs else 100001
        project = min(tenant.projects) if tenant.projects else 50001
        base = self.curl_base
        body = f'{{"jobs": [{job}], "projects": [{project}], "timeout_s": 30}}'
        self.out.line()
        self.out.line("Try it, while the demo runs:")
        self.out.line(f"  the sync queue page, in a browser: {self.base_url}/")
        self.out.line("  (sign in there with the bearer token below to retry a record or sync it now)")
        self.out.line(f"  curl {base}/status")
        self.out.line(f"  curl '{base}/v1/records?state=synced&limit=5'")
        self.out.line(f"  curl {base}/metrics")
        self.out.line(f"  curl -X POST {base}/v1/ensure -H 'Authorization: Bearer {self.token}' \\")
        self.out.line(f"       -H 'Content-Type: application/json' -d '{body}'")
        self.out.line("  (that bearer token was made up for this demo run and dies with it)")
        self.out.line("  a job of your own in ServiceTitan (synced within seconds):")
        self.out.line(f"  curl -X POST {self.sims.servicetitan_url}/_sim/tenant/{self.sims.tenant_id}/jobs "
                      f"-d '{{\"projectId\": {project}}}'")

    # ---- reconciliation ---------------------------------------------------------------------------

    async def _reconciliation(self) -> None:
        # Through the HTTP endpoints, as an operator would.
        self.out.line()
        assert self.http is not None
        async with self.http.post(f"{self.base_url}/v1/reconcile", json={}) as response:
            started = await response.json()
            if response.status != 202:
                self.out.line(f"Reconciliation: POST /v1/reconcile answered {response.status}: {started}")
                return
        run_id = started.get("id")
        deadline = time.monotonic() + 60
        latest: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            async with self.http.get(f"{self.base_url}/v1/reconcile/latest") as response:
                latest = await response.json() if response.status == 200 else None
            if latest and latest.get("id", run_id) == run_id and latest.get("finished_at"):
                break
            latest = None
            await asyncio.sleep(0.5)
        if latest is None:
            self.out.line(f"Reconciliation run {run_id}: not finished after 60 s (GET {self.curl_base}"
                          "/v1/reconcile/latest)")
            return
        counts = latest.get("counts") or {}
        detail = ", ".join(f"{name} {n}" for name, n in counts.items()) if isinstance(counts, dict) else ""
        self.out.line(f"Reconciliation run {run_id}: {latest.get('exceptions', 0)} exceptions"
                      + (f" ({detail})" if detail else "") + f"; details: curl {self.curl_base}/v1/reconcile/latest")

    # ---- life: a change in ServiceTitan every ~10 s -----------------------------------------------

    async def _life(self) -> None:
        self.out.line()
        self.out.line(f"Now a change in ServiceTitan every ~{LIFE_EVERY_S:g} s (watch curl {self.curl_base}/status). "
                      "Ctrl-C stops everything.")
        rng = random.Random()
        turn = 0
        while True:
            await asyncio.sleep(LIFE_EVERY_S)
            turn += 1
            if turn % 3 == 0 and self.sims.tenant.projects:
                self._rename_project(rng)
            else:
                self._new_job(rng)

    def _new_job(self, rng: random.Random) -> None:
        tenant = self.sims.tenant
        numbers = [int(j.job_number) for j in tenant.jobs.values() if j.job_number.isdigit()]
        number = str(max(numbers, default=24000) + 1)
        projects = [p for p in tenant.projects.values() if p.active]
        doc: dict[str, Any] = {"jobNumber": number, "jobStatus": "Scheduled", "businessUnitId": rng.choice([1, 2, 3])}
        parent: str | None = None
        if projects and rng.random() < 0.7:
            project = rng.choice(projects)
            doc["projectId"] = project.id
            where = f'under project {project.number} "{project.name}"'
            parent = self.config.mapping.project_project_id.format(project_id=project.id,
                                                                   project_number=project.number)
        else:
            doc["customerId"] = rng.choice(list(tenant.customers))
            where = "(a service call, no project)"
        job = tenant.create_job(doc)
        customer = tenant.customers[job.customer_id].name
        self.out.line(f"[{_clock()}] ServiceTitan: new job {job.job_number} (id {job.id}) for {customer} {where}")
        project_id = self.config.mapping.job_project_id.format(job_id=job.id, job_number=job.job_number)
        what = f"{project_id} created" + (f" under {parent}" if parent else "")
        self._follow(project_id, lambda p: p is not None and p.parent_id == parent, what)

    def _rename_project(self, rng: random.Random) -> None:
        tenant = self.sims.tenant
        project = rng.choice(list(tenant.projects.values()))
        old = project.name or f"Project {project.number}"
        match = re.fullmatch(r"(.*) - Phase (\d+)", old)
        new = f"{match[1]} - Phase {int(match[2]) + 1}" if match else f"{old} - Phase 2"
        tenant.update_project(project.id, {"name": new})
        self.out.line(f'[{_clock()}] ServiceTitan: project {project.number} renamed "{old}" -> "{new}"')
        project_id = self.config.mapping.project_project_id.format(project_id=project.id,
                                                                   project_number=project.number)
        expected = new[: self.config.mapping.name_max_length]
        self._follow(project_id, lambda p: p is not None and p.name == expected, f"{project_id} NAME updated")

    def _follow(self, project_id: str, arrived: Callable[[ia_sim.Project | None], bool], what: str) -> None:
        """Say when the change has reached Intacct (the simulator's data)."""

        async def watch() -> None:
            started = time.monotonic()
            while time.monotonic() - started < FOLLOW_TIMEOUT_S:
                if arrived(self.sims.intacct.projects.get(project_id)):
                    self.out.line(f"           -> Intacct: {what} after {time.monotonic() - started:.1f} s")
                    return
                await asyncio.sleep(0.2)
            self.out.line(f"           -> Intacct: {project_id} not as expected after {FOLLOW_TIMEOUT_S:.0f} s "
                          f"(see curl '{self.curl_base}/v1/records?limit=5')")

        task = asyncio.create_task(watch(), name=f"follow-{project_id}")
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)
