"""Reconciliation end to end: the daemon and the `reconcile` command as subprocesses."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from daemon.store.locks import lock_key
from tests.acceptance.harness import BOTH_APIS, REPO, TENANT, Daemon, Stack, wait_until

pytestmark = pytest.mark.timeout(120)


async def synced_world(stack: Stack, daemon: Daemon) -> dict[str, Any]:
    c = await stack.st.customer("Maria Gonzalez")
    project = await stack.st.project(c["id"], "Riverside Office HVAC")
    job = await stack.st.job(c["id"], project["id"])
    other = await stack.st.job(c["id"])
    for kind, record in (("project", project), ("job", job), ("job", other)):
        await daemon.wait_state(kind, record["id"], "synced")
    return {"project": project, "job": job, "other": other}


async def reconcile_cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "daemon.cli", "--config", str(daemon.config_path), "reconcile", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60)


@BOTH_APIS
async def test_post_reconcile_repairs_and_latest_reports(stack: Stack) -> None:
    daemon = await stack.start_daemon(stack.config())
    world = await synced_world(stack, daemon)
    job_pid = f"J-{world['job']['jobNumber']}"
    project_pid = f"P-{world['project']['number']}"
    status, body = await daemon.http.status_and_json("GET", "/v1/reconcile/latest")
    assert status == 404
    # Drift behind the daemon's back: a deleted job project, a renamed project.
    await stack.ia.call("DELETE", f"/_sim/projects/{job_pid}", ok=(204,))
    await stack.ia.call("PATCH", f"/_sim/projects/{project_pid}", {"NAME": "Renamed by hand"})

    status, body = await daemon.http.status_and_json("POST", "/v1/reconcile")
    assert status == 401  # POST needs the token
    status, body = await daemon.http.status_and_json("POST", "/v1/reconcile", headers=daemon.auth)
    assert status == 202 and isinstance(body["id"], int), body
    run_id = body["id"]

    async def finished() -> dict[str, Any] | None:
        code, latest = await daemon.http.status_and_json("GET", "/v1/reconcile/latest")
        # The report's outcome is stored after the run is done (mailing happens outside the lock).
        reported = code == 200 and (latest["report"].get("error") or latest["report"].get("sent_at"))
        return latest if reported and latest["id"] == run_id else None

    latest = await wait_until(finished, 30, "the run to finish and its report's outcome")
    assert latest["status"] == "done" and latest["trigger"] == "http" and latest["scope"] == "activated"
    assert latest["counts"]["missing_in_intacct"] == 1 and latest["counts"]["name_mismatch"] == 1
    assert latest["counts"]["matched"] == 1 and latest["exceptions"] == 2 and latest["remaining"] == 0
    assert {e["class"] for e in latest["exception_list"]} == {"missing_in_intacct", "name_mismatch"}
    assert latest["report"]["error"] == "not sent: report.email is not configured"

    async def repaired() -> bool:
        ia = await stack.ia.projects()
        return job_pid in ia and ia[project_pid]["NAME"] == "Riverside Office HVAC"

    await wait_until(repaired, 30, "the workers to repair Intacct")
    doc = await daemon.status()
    assert doc["reconcile"]["last_run_at"] == latest["finished_at"] and doc["reconcile"]["exceptions"] == 2
    async with daemon.http.session.get(daemon.http.base + "/metrics") as response:
        text = await response.text()
    gauge = next(line for line in text.splitlines() if line.startswith("st_intacct_sync_last_reconcile_timestamp"))
    assert float(gauge.split()[-1]) > 1.7e9
    assert daemon.proc.stop() == 0


async def test_reconcile_command_exit_codes_and_waiting(stack: Stack) -> None:
    daemon = await stack.start_daemon(stack.config())
    await synced_world(stack, daemon)
    clean = await reconcile_cli(daemon, "--no-email")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No exceptions: ServiceTitan and Intacct agree." in clean.stdout and "No exception remains." in clean.stdout
    assert "read ServiceTitan" in clean.stdout  # progress, page by page

    await stack.ia.call("POST", "/_sim/projects", {"PROJECTID": "J-77777", "NAME": "Made by hand"})
    orphan = await reconcile_cli(daemon, "--no-email", "--no-repair")
    assert orphan.returncode == 3, orphan.stdout + orphan.stderr
    assert "J-77777" in orphan.stdout and "1 exception(s) remain" in orphan.stdout
    assert "In Intacct only" in orphan.stdout

    # Another run holds the tenant's lock: the command says so, waits, then runs.
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key("reconcile", TENANT))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon.cli", "--config", str(daemon.config_path), "reconcile", "--no-email",
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"is running; waiting for it to finish" in line
        await asyncio.sleep(0.5)
        assert proc.returncode is None
    finally:
        await conn.close()  # releases the lock
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 3, (out + err).decode()
    assert daemon.proc.stop() == 0
