"""Reconciliation on crafted data: every class, precedence, repairs that the engine then applies.

Both simulators in-process, the real PostgreSQL, the daemon's own toolkit (store, clients, ingestor,
sync engine) and the reconciliation service with email off.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from daemon.config.loading import Config, parse_config
from daemon.http import create_app
from daemon.reconcile.mail import MailPolicy
from daemon.reconcile.service import ReconcileService, RunResult
from daemon.store.reconcile_rows import Category, Finding, RunRecord
from daemon.store.rows import RecordError, RecordKey
from daemon.tasks import TaskSet
from daemon.wiring import Toolkit, open_toolkit
from statemachine import State
from tests.acceptance.harness import free_port
from tests.integration import ui_support
from tests.integration.test_mail import Inbox, authenticator, parts, start_server
from tests.plugins.database import TENANT_ID
from tests.plugins.simulators import IntacctSim, ServiceTitanSim

pytestmark = pytest.mark.timeout(60)

SECRETS = {"app_key": "ak1.reconcile-app-key", "client_secret": "cs1.reconcile-client-secret",
           "sender_password": "sender-pass-reconcile", "user_password": "user-pass-reconcile"}


def st_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def make_config(dsn: str, st: ServiceTitanSim, ia: IntacctSim, **sections: Any) -> Config:
    data: dict[str, Any] = {
        "database": {"dsn": dsn},
        "servicetitan": {"tenant_id": TENANT_ID, "api_base_url": st.base_url, "auth_url": st.auth_url,
                         "app_key": SECRETS["app_key"], "client_id": "cid.reconcile",
                         "client_secret": SECRETS["client_secret"]},
        "intacct": {"endpoint_url": ia.url, "sender_id": "sender", "sender_password": SECRETS["sender_password"],
                    "company_id": "company", "user_id": "user", "user_password": SECRETS["user_password"],
                    "request_timeout": "10s"},
        "settings": {"enable_customer_project_linkage": True},
        "mapping": {"customer_id": "C{customer_id}"},
        "sync": {"backoff_initial": "0.01s", "backoff_max": "0.02s", "max_attempts": 2},
        "reconcile": {"scope": "activated", "repair": True},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data, "test-config", env={})


@contextlib.asynccontextmanager
async def toolkit(config: Config) -> AsyncIterator[Toolkit]:
    async with open_toolkit(lambda: config, owner="test-reconcile", pool_size=6) as kit:
        yield kit


async def sync_all(kit: Toolkit) -> None:
    """Claim and sync until nothing is ready (what the workers do)."""
    for _ in range(50):
        batch = await kit.store.claim_batch(kit.engine.owner, 100, timedelta(seconds=30))
        if not batch:
            return
        await kit.engine.process(batch)
    raise AssertionError("the queue did not drain")


def by_class(result: RunResult) -> dict[str, list[Finding]]:
    assert result.outcome is not None
    out: dict[str, list[Finding]] = {}
    for f in result.outcome.findings:
        out.setdefault(f.category.value, []).append(f)
    return out


@dataclass
class World:
    kit: Toolkit
    service: ReconcileService
    st: ServiceTitanSim
    ia: IntacctSim
    ids: dict[str, int]
    activation: datetime

    def job_pid(self, name: str) -> str:
        return f"J-{self.st.tenant().jobs[self.ids[name]].job_number}"

    def project_pid(self, name: str) -> str:
        return f"P-{self.st.tenant().projects[self.ids[name]].number}"


@pytest.fixture
async def world(database_dsn: str, servicetitan_sim: ServiceTitanSim, intacct_sim: IntacctSim
                ) -> AsyncIterator[World]:
    """Every class of §6 on a handful of records (see the comments for which is which)."""
    config = make_config(database_dsn, servicetitan_sim, intacct_sim)
    st, ia = servicetitan_sim, intacct_sim
    now = datetime.now(UTC)
    activation = now - timedelta(hours=1)
    old = st_time(now - timedelta(days=30))
    async with toolkit(config) as kit:
        await kit.store.apply_auto_sync(True, activation)
        maria = st.create_customer(name="Maria Gonzalez")
        smith = st.create_customer(name="Smith & Sons <HQ>")
        ia.add_customers(f"C{maria.id}", f"C{smith.id}")
        ids: dict[str, int] = {}
        ids["riverside"] = st.create_project(name="Riverside Office", number="1101", customerId=maria.id).id
        ids["residence"] = st.create_project(name="Smith Residence", number="1102", customerId=smith.id).id
        for name, project in (("matched", "riverside"), ("deleted", "riverside"), ("moved", "residence"),
                              ("relinked", None), ("renamed_job", None), ("pending", None)):
            doc: dict[str, Any] = {"customerId": maria.id, "jobNumber": str(24001 + len(ids))}
            if project:
                doc["projectId"] = ids[project]
            ids[name] = st.create_job(**doc).id
        ghost = st.create_customer(name="Ghost Customer")  # unknown to Intacct: its job fails
        ids["failing"] = st.create_job(customerId=ghost.id, jobNumber="24010").id
        ids["blocked"] = st.create_job(customerId=maria.id, jobNumber="24011").id
        # Two jobs from before the activation time, one after it that the poller has not seen yet.
        ids["old"] = st.create_job(customerId=maria.id, jobNumber="23001", createdOn=old, modifiedOn=old).id
        ids["old_present"] = st.create_job(customerId=maria.id, jobNumber="23002", createdOn=old, modifiedOn=old).id
        ids["unseen"] = st.create_job(customerId=maria.id, jobNumber="24012").id

        tenant = st.tenant()
        projects = [await kit.servicetitan.get_project(ids[p]) for p in ("riverside", "residence")]
        await kit.ingestor.ingest_projects(projects)
        tracked = ["matched", "deleted", "moved", "relinked", "renamed_job", "failing"]
        await kit.ingestor.ingest_jobs(await kit.servicetitan.get_jobs([ids[n] for n in tracked]))
        await sync_all(kit)
        assert (await kit.store.get(RecordKey("job", ids["failing"]))).state is State.FAILED  # type: ignore[union-attr]
        # Blocked: pending while the connection is in error. Pending: enqueued, not synced yet.
        await kit.ingestor.ingest_jobs([await kit.servicetitan.get_job(ids["blocked"])])
        await kit.store.block_pending(RecordError("connection", "Sign-in information is incorrect", "XL03000006"),
                                      "connection error")
        await kit.ingestor.ingest_jobs([await kit.servicetitan.get_job(ids["pending"])])

        # Drift made in Intacct behind the daemon's back.
        world = World(kit, ReconcileService.from_toolkit(kit), st, ia, ids, activation)
        projects = ia.state.projects
        projects.delete(world.job_pid("deleted"))
        projects.update(world.project_pid("residence"), {"NAME": "Renamed by hand"}, ia.state.customers)
        projects.update(world.job_pid("moved"), {"PARENTID": world.project_pid("riverside")}, ia.state.customers)
        projects.update(world.job_pid("relinked"), {"CUSTOMERID": f"C{smith.id}"}, ia.state.customers)
        projects.update(world.job_pid("renamed_job"), {"NAME": "Wrong", "CUSTOMERID": f"C{smith.id}"},
                        ia.state.customers)
        projects.create({"PROJECTID": "J-99999", "NAME": "Made by hand", "PROJECTCATEGORY": "Contract"},
                        ia.state.customers)
        projects.create({"PROJECTID": "OTHER-1", "NAME": "Not ours", "PROJECTCATEGORY": "Contract"},
                        ia.state.customers)
        old_job = tenant.jobs[ids["old_present"]]
        projects.create({"PROJECTID": f"J-{old_job.job_number}", "NAME": "Stale name",
                         "PROJECTCATEGORY": "Contract", "CUSTOMERID": f"C{maria.id}"}, ia.state.customers)
        yield world


def keys(findings: list[Finding]) -> set[int | str | None]:
    return {f.st_id if f.st_id is not None else f.intacct_project_id for f in findings}


async def test_every_class_is_found_and_repairs_are_queued(world: World) -> None:
    result = await world.service.run_once("cli", wait=True, email=False)
    assert result is not None and result.outcome is not None
    found = by_class(result)
    ids = world.ids
    counts = result.run.counts
    assert keys(found["missing_in_intacct"]) == {ids["deleted"], ids["unseen"], ids["pending"]}
    assert keys(found["name_mismatch"]) == {ids["residence"], ids["old_present"]}
    assert keys(found["parent_mismatch"]) == {ids["moved"]}
    # Name and customer both differ: one exception, of the first class by precedence, naming both.
    assert keys(found["customer_mismatch"]) == {ids["relinked"], ids["renamed_job"]}
    both = next(f for f in found["customer_mismatch"] if f.st_id == ids["renamed_job"])
    assert "Customer in Intacct" in both.detail and "Name in Intacct is “Wrong”" in both.detail
    assert keys(found["orphan_in_intacct"]) == {"J-99999"}  # OTHER-1 is not ours by pattern
    assert keys(found["failed"]) == {ids["failing"]}
    assert "Customer" in found["failed"][0].detail and found["failed"][0].needs_attention
    assert keys(found["blocked"]) == {ids["blocked"]}
    assert counts["outside_scope"] == 1 and "outside_scope" not in found
    assert counts["matched"] == 2  # the matched job and the Riverside project
    assert result.run.exceptions == sum(len(v) for v in found.values()) == 11

    actions = {f.st_id: f for fs in found.values() for f in fs}
    assert actions[ids["deleted"]].action.startswith("Queued to be created again")
    assert actions[ids["unseen"]].action.startswith("Queued to be created")
    assert actions[ids["pending"]].action.startswith("Already waiting")
    assert actions[ids["moved"]].action.startswith("Queued to be corrected")
    assert actions[ids["old_present"]].action.startswith("Not repaired: last changed in ServiceTitan before")
    # Remaining: failed, blocked, the orphan and the out-of-scope rename.
    assert result.remaining == result.run.summary["remaining"] == 4
    assert {f.st_id for f in result.outcome.findings if f.needs_attention} == {
        ids["failing"], ids["blocked"], None, ids["old_present"]}

    kit = world.kit
    deleted = await kit.store.get(RecordKey("job", ids["deleted"]))
    assert deleted is not None and deleted.state is State.PENDING and deleted.priority == 5
    unseen = await kit.store.get(RecordKey("job", ids["unseen"]))
    assert unseen is not None and unseen.state is State.PENDING
    old = await kit.store.get(RecordKey("job", ids["old"]))
    assert old is None  # outside the scope: counted, never enqueued
    history = await kit.store.history(RecordKey("job", ids["moved"]))
    assert history[0].reason == "reconcile: parent_mismatch"


async def test_repairs_restore_intacct_and_the_next_run_is_clean(world: World) -> None:
    first = await world.service.run_once("cli", wait=True, email=False)
    assert first is not None and first.outcome is not None
    await world.kit.store.unblock_all()
    await sync_all(world.kit)
    ia = world.ia.projects()
    assert ia[world.job_pid("deleted")]["NAME"].endswith("Maria Gonzalez")
    assert ia[world.project_pid("residence")]["NAME"] == "Smith Residence"
    assert ia[world.job_pid("moved")]["PARENTID"] == world.project_pid("residence")
    maria = world.st.tenant().jobs[world.ids["relinked"]].customer_id
    assert ia[world.job_pid("relinked")]["CUSTOMERID"] == f"C{maria}"
    assert ia[world.job_pid("renamed_job")]["NAME"] != "Wrong"
    assert "J-99999" in ia  # orphans are never deleted

    second = await world.service.run_once("cli", wait=True, email=False)
    assert second is not None and second.outcome is not None
    found = by_class(second)
    assert set(found) == {"failed", "orphan_in_intacct", "name_mismatch"}
    # The orphan was reported before: its age carries over from the first run.
    orphan_before = next(f for f in first.outcome.findings if f.category is Category.ORPHAN)
    assert found["orphan_in_intacct"][0].since == orphan_before.since == first.run.started_at
    failed = found["failed"][0]
    assert failed.since is not None and failed.since < second.run.started_at
    assert second.run.counts["matched"] == 10  # 2 projects, 8 jobs


async def test_no_repair_and_scope_all(world: World, database_dsn: str) -> None:
    config = make_config(database_dsn, world.st, world.ia, reconcile={"scope": "all", "repair": False})
    service = with_config(world, config)
    result = await service.run_once("cli", wait=True, email=False)
    assert result is not None and result.outcome is not None
    found = by_class(result)
    assert result.run.scope == "all" and result.run.period_start is None and not result.run.repair
    assert world.ids["old"] in keys(found["missing_in_intacct"])  # in scope now
    assert result.run.counts.get("outside_scope", 0) == 0
    assert all(f.action.startswith(("Not repaired", "Already waiting", "None until", "Waits", "Left as"))
               for fs in found.values() for f in fs)
    deleted = await world.kit.store.get(RecordKey("job", world.ids["deleted"]))
    assert deleted is not None and deleted.state is State.SYNCED  # nothing was queued
    assert await world.kit.store.get(RecordKey("job", world.ids["old"])) is None


async def test_concurrent_runs_are_serialised(world: World) -> None:
    other = ReconcileService.from_toolkit(world.kit)
    waited: list[int | None] = []
    async with other._lock(wait=False, on_wait=None) as held:  # noqa: SLF001 - another process's run
        assert held
        assert await world.service.run_once("schedule", wait=False) is None  # a periodic run skips
        task = asyncio.create_task(world.service.run_once("cli", wait=True, email=False, on_wait=waited.append))
        await asyncio.sleep(0.5)
        assert not task.done() and waited == [None]
    result = await task
    assert result is not None and result.run.status == "done"


async def test_latest_serves_the_summary_and_a_capped_list(world: World) -> None:
    assert await world.service.latest() is None
    result = await world.service.run_once("http", wait=True, email=False)
    assert result is not None
    latest = await world.service.latest()
    assert latest is not None
    assert latest["id"] == result.run.id and latest["status"] == "done" and latest["exceptions"] == 11
    assert latest["remaining"] == 4 and latest["finished_at"].endswith("Z")
    assert latest["pages"] == {"intacct": 1, "servicetitan": 2} and latest["records_read"]["servicetitan"] == 13
    assert set(latest["timings"]) >= {"read_intacct", "read_servicetitan_projects", "projects", "jobs", "total"}
    assert len(latest["exception_list"]) == 11 and not latest["exception_list_truncated"]
    assert {"class", "servicetitan_id", "intacct_project_id", "action", "since"} <= set(latest["exception_list"][0])
    assert latest["report"]["error"] == "not sent: --no-email"
    assert world.kit.metrics.last_reconcile._value.get() > 0  # noqa: SLF001 - prometheus_client internals


def with_config(world: World, config: Config, **options: Any) -> ReconcileService:
    """Another service over the same toolkit, under other settings."""
    kit = world.kit
    return ReconcileService(store=kit.store, servicetitan=kit.servicetitan, intacct=kit.intacct,
                            ingestor=kit.ingestor, config=lambda: config, dsn=kit.dsn, metrics=kit.metrics,
                            **options)


def mail_settings(port: int, **changes: Any) -> dict[str, Any]:
    email = {"to": ["accounting@example.com"], "from": "sync@example.com", "smtp_host": "127.0.0.1",
             "smtp_port": port, "username": "reports", "password": "mail-secret-1"}
    return {"send": "on-exceptions", "email": {**email, **changes}}


async def test_the_report_arrives_by_email(world: World, database_dsn: str) -> None:
    box = Inbox()
    controller = start_server(box, authenticator=authenticator, auth_require_tls=False)
    try:
        config = make_config(database_dsn, world.st, world.ia, report=mail_settings(controller.port))
        result = await with_config(world, config).run_once("schedule", wait=False)
    finally:
        controller.stop()
    assert result is not None and result.mail == "sent to accounting@example.com"
    assert result.run.report_sent_at is not None and result.run.report_error is None
    [message] = box.messages
    assert message["Subject"] == "[st-intacct-sync] Reconciliation 1234567: 11 exceptions"
    text, html, files = parts(message)
    assert text.startswith(f"Reconciliation of ServiceTitan tenant {TENANT_ID} with Sage Intacct\n\nScope:")
    assert "Missing in Intacct: 3" in text and "<h4>Missing in Intacct: 3</h4>" in html
    assert "Smith &amp; Sons &lt;HQ&gt;" in html or "Smith & Sons <HQ>" not in html
    [(name, content)] = files
    assert name is not None and name.startswith(f"reconciliation-{TENANT_ID}-") and name.endswith("Z.csv")
    assert content.startswith("\ufeff")  # UTF-8 with a byte-order mark, for Excel
    rows = list(csv.DictReader(io.StringIO(content.removeprefix("\ufeff"))))
    assert list(rows[0]) == ["class", "kind", "servicetitan_id", "servicetitan_number", "servicetitan_name",
                             "intacct_project_id", "intacct_name", "detail", "action"]
    assert len(rows) == 11
    assert {r["servicetitan_id"] for r in rows if r["class"] == "missing_in_intacct"} == {
        str(world.ids[n]) for n in ("deleted", "unseen", "pending")}
    orphan = next(r for r in rows if r["class"] == "orphan_in_intacct")
    assert orphan["intacct_project_id"] == "J-99999" and orphan["servicetitan_id"] == ""
    secrets = [*SECRETS.values(), "mail-secret-1"]
    for part in (message.as_string(), text, html, content):
        assert not [s for s in secrets if s in part]
    # The queue page's download of the run is this very file.
    services = ui_support.Services(world.kit.store, ui_support.make_config())
    async with TestClient(TestServer(create_app(services))) as client:  # type: ignore[arg-type]
        response = await client.get(f"/reconciliation/{result.run.id}/csv")
        assert response.status == 200 and f'filename="{name}"' in response.headers["Content-Disposition"]
        # Line ends aside (a mail's text parts travel with CRLF and are read back with LF), byte for byte.
        assert (await response.read()).decode("utf-8").replace("\r\n", "\n") == content.replace("\r\n", "\n")


async def test_mail_is_sent_on_exceptions_or_always(database_dsn: str, servicetitan_sim: ServiceTitanSim,
                                                    intacct_sim: IntacctSim) -> None:
    box = Inbox()
    controller = start_server(box, authenticator=authenticator, auth_require_tls=False)
    st, ia = servicetitan_sim, intacct_sim
    try:
        on_exceptions = make_config(database_dsn, st, ia, report=mail_settings(controller.port))
        always = make_config(database_dsn, st, ia, report={**mail_settings(controller.port), "send": "always"})
        nowhere = make_config(database_dsn, st, ia, report={"send": "always", "email": None})
        async with toolkit(on_exceptions) as kit:
            def service(config: Config) -> ReconcileService:
                return ReconcileService(store=kit.store, servicetitan=kit.servicetitan, intacct=kit.intacct,
                                        ingestor=kit.ingestor, config=lambda: config, dsn=kit.dsn)

            quiet = await service(on_exceptions).run_once("cli", wait=True)
            assert quiet is not None and quiet.run.exceptions == 0
            assert quiet.mail == "not sent: no exceptions (report.send: on-exceptions)"
            unset = await service(nowhere).run_once("cli", wait=True)
            assert unset is not None and unset.run.report_error == "not sent: report.email is not configured"
            skipped = await service(always).run_once("cli", wait=True, email=False)
            assert skipped is not None and skipped.mail == "not sent: --no-email"
            assert box.messages == []
            sent = await service(always).run_once("cli", wait=True)
            assert sent is not None and sent.mail.startswith("sent")
    finally:
        controller.stop()
    [message] = box.messages
    assert message["Subject"] == "[st-intacct-sync] Reconciliation 1234567: 0 exceptions"
    assert "No exceptions: ServiceTitan and Intacct agree." in parts(message)[0]


async def test_an_smtp_outage_is_retried_and_survived(world: World, database_dsn: str) -> None:
    port = free_port()
    config = make_config(database_dsn, world.st, world.ia, report=mail_settings(port))
    service = with_config(world, config, mail_policy=MailPolicy(attempts=6, first_delay=0.2))
    box = Inbox()
    run = asyncio.create_task(service.run_once("schedule", wait=False))
    await asyncio.sleep(1.0)  # the first attempts meet a closed port
    assert not run.done()
    controller = start_server(box, port=port, authenticator=authenticator, auth_require_tls=False)
    try:
        result = await asyncio.wait_for(run, 20)
    finally:
        controller.stop()
    assert result is not None and result.mail.startswith("sent") and len(box.messages) == 1

    down = with_config(world, make_config(database_dsn, world.st, world.ia, report=mail_settings(free_port())),
                       mail_policy=MailPolicy(attempts=2, first_delay=0.05))
    failed_mail = await down.run_once("schedule", wait=False)
    assert failed_mail is not None and failed_mail.run.status == "done"  # the mail never fails the run
    assert failed_mail.run.report_error is not None and "unreachable" in failed_mail.run.report_error
    assert failed_mail.run.report_sent_at is None


async def test_the_schedule_runs_every_interval(world: World, database_dsn: str) -> None:
    config = make_config(database_dsn, world.st, world.ia, reconcile={"interval": "1s"})
    service = with_config(world, config)
    service._created -= timedelta(hours=1)  # noqa: SLF001 - past the start-up grace
    task = asyncio.create_task(service.schedule())
    try:
        async def runs() -> int:
            newest = await world.kit.store.runs.latest()
            return 0 if newest is None else newest.id

        async def at_least(n: int) -> None:
            for _ in range(100):
                if await runs() >= n:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"fewer than {n} scheduled runs")

        await at_least(2)
        latest = await world.kit.store.runs.latest()
        assert latest is not None and latest.trigger == "schedule" and latest.status == "done"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def finished_run(world: World, run_id: int) -> RunRecord:
    """The reconciliation run `run_id` once it has stopped running (10 s at most)."""
    for _ in range(100):
        run = await world.kit.store.runs.get(run_id)
        if run is not None and run.status != "running":
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"reconciliation run {run_id} still running after 10 s")


async def test_http_runs_share_the_run_in_progress_and_stop_cleanly(world: World) -> None:
    world.st.set_faults(page_latency=0.5)  # a slow listing keeps the run in progress
    service = world.service
    first = await service.start_run("http")
    assert await service.start_run("http") == first  # the run in progress answers for both
    await asyncio.sleep(0.2)
    await service.aclose()  # shutdown: the background run is cancelled and says so
    run = await world.kit.store.runs.get(first)
    assert run is not None and run.status == "failed" and run.error is not None and "interrupted" in run.error
    world.st.clear_faults()
    again = await service.start_run("http")
    assert again > first
    run = await finished_run(world, again)
    assert run.status == "done"


async def test_http_runs_belong_to_the_daemons_task_set(world: World, database_dsn: str) -> None:
    world.st.set_faults(page_latency=0.5)  # a slow listing keeps the run in progress
    tasks = TaskSet()
    service = with_config(world, make_config(database_dsn, world.st, world.ia), tasks=tasks)
    first = await service.start_run("http")
    assert tasks.names("reconcile-http") == ["reconcile-http-1"]
    await tasks.stop_all()  # the daemon's drain: no run outlives it
    run = await world.kit.store.runs.get(first)
    assert run is not None and run.status == "failed" and run.error is not None and "interrupted" in run.error
    assert not tasks.failed.is_set()  # an HTTP run is meant to end: stopping it fails nothing
    world.st.clear_faults()
    again = await service.start_run("http")
    run = await finished_run(world, again)
    assert run.status == "done"
    for _ in range(20):  # a finished run leaves the set
        if not tasks.names("reconcile-"):
            break
        await asyncio.sleep(0.05)
    assert tasks.names("reconcile-") == [] and not tasks.failed.is_set()
