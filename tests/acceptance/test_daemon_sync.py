"""End to end: the daemon as a subprocess against both simulators and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.acceptance.harness import BOTH_APIS, REPO, Stack, wait_until

pytestmark = pytest.mark.timeout(180)


def st_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


@BOTH_APIS
async def test_job_and_project_are_created_parent_first(stack: Stack) -> None:
    daemon = await stack.start_daemon(stack.config())
    customer = await stack.st.customer("Smith & Sons <HQ> \"Ltd\"")
    project = await stack.st.project(customer["id"], "Riverside Office HVAC")
    job = await stack.st.job(customer["id"], project["id"])
    loose = await stack.st.job(customer["id"])
    synced_job = await daemon.wait_state("job", job["id"], "synced")
    await daemon.wait_state("job", loose["id"], "synced")
    projects = await stack.ia.projects()
    pid, jid = f"P-{project['number']}", f"J-{job['jobNumber']}"
    assert projects[pid]["NAME"] == "Riverside Office HVAC" and projects[pid]["PARENTID"] is None
    assert projects[jid]["PARENTID"] == pid
    assert projects[jid]["NAME"] == f"{job['jobNumber']} Smith & Sons <HQ> \"Ltd\""  # escaped, not mangled
    assert projects[pid]["RECORDNO"] < projects[jid]["RECORDNO"]  # the parent was created first
    assert projects[f"J-{loose['jobNumber']}"]["PARENTID"] is None
    assert synced_job["intacct_project_id"] == jid and synced_job["desired"]["PARENTID"] == pid
    history = [(h["from"], h["to"]) for h in reversed(synced_job["history"])]
    assert history == [(None, "pending"), ("pending", "syncing"), ("syncing", "synced")]
    status = await daemon.status()
    assert status["queue"]["synced"] == 3 and status["connections"]["intacct"]["state"] == "ok"
    assert daemon.proc.stop() == 0


@BOTH_APIS
async def test_rename_and_move_follow_servicetitan(stack: Stack) -> None:
    daemon = await stack.start_daemon(stack.config())
    c = await stack.st.customer("Acme")
    p1 = await stack.st.project(c["id"], "First name")
    p2 = await stack.st.project(c["id"], "Other project")
    job = await stack.st.job(c["id"], p1["id"])
    await daemon.wait_state("job", job["id"], "synced")
    await stack.st.update("project", p1["id"], name="Second name")
    await stack.st.update("job", job["id"], projectId=p2["id"])

    async def mirrored() -> bool:
        ia = await stack.ia.projects()
        return (ia[f"P-{p1['number']}"]["NAME"] == "Second name"
                and ia[f"J-{job['jobNumber']}"]["PARENTID"] == f"P-{p2['number']}")

    await wait_until(mirrored, 20, "rename and move mirrored in Intacct")
    assert await stack.ia.project_count() == 3  # updated in place, nothing created twice
    daemon.proc.stop()


async def test_name_setting_off_keeps_the_fallback_name(stack: Stack) -> None:
    config = stack.config(settings={"use_project_name_for_intacct_project_name": False})
    daemon = await stack.start_daemon(config)
    c = await stack.st.customer("Acme")
    p = await stack.st.project(c["id"], "Pretty name")
    await daemon.wait_state("project", p["id"], "synced")
    await stack.st.update("project", p["id"], name="Renamed")
    await asyncio.sleep(3)  # several polls
    ia = await stack.ia.projects()
    assert ia[f"P-{p['number']}"]["NAME"] == f"Project {p['number']}"
    daemon.proc.stop()


async def test_parent_mapping_off_syncs_no_projects_and_customer_linkage_on(stack: Stack) -> None:
    config = stack.config(settings={"enable_parent_project_mapping": False, "enable_customer_project_linkage": True},
                          mapping={"customer_id": "C{customer_id}"})
    c = await stack.st.customer("Linked Customer")
    await stack.ia.call("POST", "/_sim/customers", {"ids": [f"C{c['id']}"]})
    daemon = await stack.start_daemon(config)
    p = await stack.st.project(c["id"], "Proj")
    job = await stack.st.job(c["id"], p["id"])
    await daemon.wait_state("job", job["id"], "synced")
    await asyncio.sleep(2)  # several polls: the project feed is read too
    ia = await stack.ia.projects()
    # Parent mapping off: ServiceTitan projects are not synced at all, and jobs carry no PARENTID.
    assert set(ia) == {f"J-{job['jobNumber']}"}
    assert ia[f"J-{job['jobNumber']}"]["PARENTID"] is None
    assert ia[f"J-{job['jobNumber']}"]["CUSTOMERID"] == f"C{c['id']}"
    assert await daemon.record("project", p["id"]) is None
    status, body = await daemon.ensure(projects=[p["id"]])
    assert status == 409 and "parent project mapping is off" in body["results"][0]["error"], body
    assert f"P-{p['number']}" not in await stack.ia.projects()
    daemon.proc.stop()


async def test_parent_mapping_turned_on_by_reload_then_reconciliation_repairs(stack: Stack) -> None:
    config = stack.config(settings={"enable_parent_project_mapping": False})
    daemon = await stack.start_daemon(config)
    c = await stack.st.customer("Acme")
    p = await stack.st.project(c["id"], "Proj")
    job = await stack.st.job(c["id"], p["id"])
    await daemon.wait_state("job", job["id"], "synced")
    assert "desired_fields_rederived" not in daemon.proc.output()  # nothing to derive again at the start
    # The project feed must have passed the project while the mapping was off. The jobs feed found the
    # job (made after the project), but that poll's project read may have come before the project: wait
    # for the time both feeds were last read to move on, which only a later project read can do.
    before = (await daemon.status())["poller"]["last_poll_at"]
    assert before is not None  # both feeds were read: the job came from the second

    async def project_feed_read_again() -> bool:
        return bool((await daemon.status())["poller"]["last_poll_at"] > before)

    await wait_until(project_feed_read_again, 15, "a project feed read after the job synced")
    config["settings"]["enable_parent_project_mapping"] = True
    stack.write_config(config, "daemon.yaml")
    daemon.hup()
    await wait_until(lambda: _logged(daemon, "desired_fields_rederived"), 15, "the records derived again")
    # Nothing moves by itself: the job's project was never tracked while the mapping was off.
    assert set(await stack.ia.projects()) == {f"J-{job['jobNumber']}"}
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "daemon.cli", "--config", str(daemon.config_path), "reconcile",
                         "--no-email"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "parent" in result.stdout, result.stdout + result.stderr

    async def repaired() -> bool:
        ia = await stack.ia.projects()
        return ia.get(f"J-{job['jobNumber']}", {}).get("PARENTID") == f"P-{p['number']}"

    await wait_until(repaired, 30, "the job re-parented under its project")
    daemon.proc.stop()


async def test_a_template_edited_while_stopped_keeps_the_ids_intacct_has(stack: Stack) -> None:
    config = stack.config()
    daemon = await stack.start_daemon(config)
    c = await stack.st.customer("Acme")
    first = await stack.st.job(c["id"])
    await daemon.wait_state("job", first["id"], "synced")
    assert daemon.proc.stop() == 0
    config["mapping"] = {**config.get("mapping", {}), "job_project_id": "JOB-{job_number}"}
    daemon = await stack.start_daemon(config, name="restarted")
    output = daemon.proc.output()
    assert "desired_fields_rederived" in output and '"kept_project_id": 1' in output, output[-2000:]
    second = await stack.st.job(c["id"])
    await daemon.wait_state("job", second["id"], "synced")
    assert set(await stack.ia.projects()) == {f"J-{first['jobNumber']}", f"JOB-{second['jobNumber']}"}
    assert (await daemon.record("job", first["id"]))["intacct_project_id"] == f"J-{first['jobNumber']}"
    daemon.proc.stop()


async def _logged(daemon: object, event: str) -> bool:
    return event in daemon.proc.output()  # type: ignore[attr-defined]


async def test_master_switch_off_syncs_nothing_and_refuses_ensure(stack: Stack) -> None:
    config = stack.config(settings={
        "enable_intacct_projects": False, "enable_customer_project_linkage": False,
        "enable_project_automatic_synchronization": False, "enable_parent_project_mapping": False,
        "use_project_name_for_intacct_project_name": False})
    daemon = await stack.start_daemon(config)
    c = await stack.st.customer("Acme")
    job = await stack.st.job(c["id"])
    status, body = await daemon.ensure(jobs=[job["id"]])
    assert status == 409 and body["ok"] is False
    await asyncio.sleep(2.5)
    assert await stack.ia.project_count() == 0
    daemon.proc.stop()


async def test_automatic_sync_off_then_on_is_not_retroactive(stack: Stack) -> None:
    off = stack.config(settings={"enable_project_automatic_synchronization": False})
    daemon = await stack.start_daemon(off)
    c = await stack.st.customer("Acme")
    while_off = await stack.st.job(c["id"])
    await asyncio.sleep(2.5)
    assert await stack.ia.project_count() == 0
    assert (await daemon.status())["settings"]["auto_sync_activated_at"] is None
    # Turn it on with a reload: a new activation time; the job created while off stays out.
    stack.write_config(stack.config(), "daemon.yaml")
    await asyncio.sleep(0.05)
    daemon.hup()
    await wait_until(lambda: _activated(daemon), 15, "a new activation time")
    after = await stack.st.job(c["id"])
    await daemon.wait_state("job", after["id"], "synced")
    await asyncio.sleep(2)
    assert f"J-{while_off['jobNumber']}" not in await stack.ia.projects()
    assert await daemon.record("job", while_off["id"]) is None
    daemon.proc.stop()


async def _activated(daemon: object) -> bool:
    status = await daemon.status()  # type: ignore[attr-defined]
    return status["settings"]["auto_sync_activated_at"] is not None


async def test_pre_activation_records_wait_for_backfill_or_ensure(stack: Stack) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    c = await stack.st.customer("Old Customer")
    old_project = await stack.st.project(c["id"], "Old project", createdOn=st_time(old), modifiedOn=st_time(old))
    old_job = await stack.st.job(c["id"], old_project["id"], createdOn=st_time(old), modifiedOn=st_time(old))
    other_old = await stack.st.job(c["id"], createdOn=st_time(old), modifiedOn=st_time(old))
    config = stack.config()
    daemon = await stack.start_daemon(config)
    await asyncio.sleep(3)  # several polls: nothing older than the activation time is synced
    assert await stack.ia.project_count() == 0
    # An explicit request is not retroactive sync: ensure works for an old job (and its parent).
    status, body = await daemon.ensure(jobs=[old_job["id"]])
    assert status == 200, body
    assert body["results"] == [{"kind": "job", "id": old_job["id"], "state": "synced",
                                "intacct_project_id": f"J-{old_job['jobNumber']}", "error": None}]
    assert set(await stack.ia.projects()) == {f"P-{old_project['number']}", f"J-{old_job['jobNumber']}"}
    # backfill reaches the rest.
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "--config", str(daemon.config_path), "backfill",
         "--since", (old - timedelta(days=1)).date().isoformat()],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "read" in result.stdout and "enqueued" in result.stdout
    await daemon.wait_state("job", other_old["id"], "synced")
    assert await stack.ia.project_count() == 3
    daemon.proc.stop()


@BOTH_APIS
async def test_ensure_unseen_job_and_unknown_id(stack: Stack) -> None:
    # Automatic sync off: only the explicit request can sync it.
    daemon = await stack.start_daemon(stack.config(settings={"enable_project_automatic_synchronization": False}))
    c = await stack.st.customer("Acme")
    p = await stack.st.project(c["id"], "With parent")
    job = await stack.st.job(c["id"], p["id"])
    status, body = await daemon.ensure(jobs=[job["id"]], projects=[p["id"]])
    assert status == 200 and body["ok"], body
    assert {r["state"] for r in body["results"]} == {"synced"}
    assert (await stack.ia.projects())[f"J-{job['jobNumber']}"]["PARENTID"] == f"P-{p['number']}"
    status, body = await daemon.ensure(jobs=[987654321])
    assert status == 404
    status, body = await daemon.http.status_and_json("POST", "/v1/ensure", {"jobs": "x"}, headers=daemon.auth)
    assert status == 400 and "jobs" in body["error"]
    status, body = await daemon.http.status_and_json("POST", "/v1/ensure", {"jobs": [job["id"]]})
    assert status == 401  # no token
    daemon.proc.stop()


@BOTH_APIS
async def test_wrong_intacct_password_blocks_then_sighup_resumes(stack: Stack) -> None:
    bad = stack.config(intacct=stack.wrong_intacct_secret("wrong-password-9"))
    daemon = await stack.start_daemon(bad)
    c = await stack.st.customer("Acme")
    jobs = [await stack.st.job(c["id"]) for _ in range(5)]
    await daemon.wait_queue(lambda q: q["blocked-by-connection"] == 5, 20, "5 blocked records")
    status = await daemon.status()
    assert status["connections"]["intacct"]["state"] == "error"
    assert "wrong-password-9" not in json.dumps(status)
    readyz, _ = await daemon.http.status_and_json("GET", "/readyz")
    assert readyz == 503
    stats_before = await stack.ia.stats()
    await asyncio.sleep(2.5)
    stats_after = await stack.ia.stats()
    assert stats_after["functions"]["create"] == stats_before["functions"]["create"] == 0  # only probes
    # Fix the password, reload: everything resumes and syncs, none lost.
    stack.write_config(stack.config(), "daemon.yaml")
    daemon.hup()
    for job in jobs:
        await daemon.wait_state("job", job["id"], "synced", timeout=30)
    assert await stack.ia.project_count() == 5
    assert (await daemon.status())["connections"]["intacct"]["state"] == "ok"
    log = daemon.proc.output()
    assert "wrong-password-9" not in log and "user-secret-1" not in log and "rest-secret-1" not in log
    daemon.proc.stop()


@BOTH_APIS
async def test_sigterm_mid_sync_then_restart_finishes_without_duplicates(stack: Stack) -> None:
    await stack.ia.faults(latency=0.3)
    config = stack.config(intacct={"max_functions_per_request": 10})
    daemon = await stack.start_daemon(config)
    c = await stack.st.customer("Acme")
    await stack.st.bulk({"jobs": [{"customerId": c["id"]} for _ in range(300)]})
    await wait_until(stack.ia.project_count, 30, "the first creates")
    assert daemon.proc.stop(60) == 0  # graceful: in-flight requests finish, leases are given back
    status_rows = await _db_states(stack.dsn)
    assert status_rows.get("syncing", 0) == 0
    daemon2 = await stack.start_daemon(config, name="daemon2")
    await daemon2.wait_queue(lambda q: q["synced"] == 300, 90, "300 synced")
    projects = await stack.ia.call("GET", "/_sim/projects")
    ids = [p["PROJECTID"] for p in projects["projects"]]
    assert len(ids) == len(set(ids)) == 300
    daemon2.proc.stop()


async def _db_states(dsn: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return {r["state"]: r["n"] for r in await conn.fetch("SELECT state, count(*) AS n FROM records GROUP BY 1")}
    finally:
        await conn.close()


@BOTH_APIS
async def test_lost_answers_never_duplicate(stack: Stack) -> None:
    await stack.ia.faults(lost_answer_rate=0.4, seed=7)
    daemon = await stack.start_daemon(stack.config(intacct={"max_functions_per_request": 5}))
    c = await stack.st.customer("Acme")
    await stack.st.bulk({"jobs": [{"customerId": c["id"]} for _ in range(60)]})
    await daemon.wait_queue(lambda q: q["synced"] == 60, 90, "60 synced")
    projects = (await stack.ia.call("GET", "/_sim/projects"))["projects"]
    ids = [p["PROJECTID"] for p in projects]
    assert len(ids) == len(set(ids)) == 60
    stats = await stack.ia.stats()
    assert stats["faults"].get("lost_answer", 0) > 0  # the fault really happened
    daemon.proc.stop()


async def test_port_in_use_is_one_clear_line_and_exit_1(stack: Stack) -> None:
    config = stack.config()
    first = await stack.start_daemon(config)
    second = await stack.start_daemon(config, name="second", wait=False)
    assert await second.proc.wait_exit(60) == 1
    output = second.proc.output()
    assert "cannot listen on" in output and "http.listen" in output and "Traceback" not in output
    assert (await first.status())["connections"]["intacct"]["state"] == "ok"  # the first one is unharmed
    first.proc.stop()
