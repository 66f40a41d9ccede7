"""Monitoring stays honest while PostgreSQL is down (stopped for real: a private server of this test).

`/status` answers 200 with a `database` section (`state`, `since`, `last_error`) instead of a 500,
`/metrics` keeps answering with `st_intacct_sync_database_up 0`, `/readyz` is 503 naming the
database, and `st-intacct-sync status` prints it. When the server is back, all of it recovers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.harness import REPO, Stack, wait_until
from tests.plugins.private_postgres import PrivatePostgres

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def _metric(session: aiohttp.ClientSession, base: str, name: str) -> tuple[float | None, str]:
    async with session.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
        content_type = resp.headers["Content-Type"]
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1]), content_type
    return None, content_type


async def test_status_metrics_readyz_while_the_database_is_stopped(
        tmp_path: Path, private_pg: tuple[PrivatePostgres, str], session: aiohttp.ClientSession) -> None:
    pg, dsn = private_pg
    stack = Stack(tmp_path, dsn, session)
    try:
        await stack.start_simulators()
        daemon = await stack.start_daemon(stack.config())
        base = daemon.http.base
        up, content_type = await _metric(session, base, "st_intacct_sync_database_up")
        assert up == 1.0
        assert content_type.startswith("text/plain; version=0.0.4")
        before = await daemon.status()
        assert before["database"]["state"] == "ok" and before["queue"] is not None

        await pg.stop()
        code, doc = await daemon.http.status_and_json("GET", "/status")
        assert code == 200, doc
        database = doc["database"]
        assert database["state"] == "error" and database["since"] and database["last_error"]["description"]
        assert doc["queue"] is None and doc["connections"]["intacct"]["state"] == "ok"
        assert doc["tenant_id"] == 1234567 and doc["version"] == before["version"]
        down, _ = await _metric(session, base, "st_intacct_sync_database_up")
        assert down == 0.0
        ready, body = await daemon.http.status_and_json("GET", "/readyz")
        assert ready == 503 and any(r.startswith("database does not answer") for r in body["reasons"]), body
        printed = subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(daemon.config_path),
                                  "status"], capture_output=True, text=True, timeout=60, cwd=REPO)
        assert printed.returncode == 0, printed.stderr
        assert "database      error since" in printed.stdout and "unknown (no database)" in printed.stdout

        await pg.start()

        async def recovered() -> bool:
            code, doc = await daemon.http.status_and_json("GET", "/status")
            return code == 200 and doc["database"]["state"] == "ok" and doc["queue"] is not None

        await wait_until(recovered, 30, "the database ok again in /status")
        assert (await _metric(session, base, "st_intacct_sync_database_up"))[0] == 1.0
        assert (await daemon.http.status_and_json("GET", "/readyz"))[0] == 200
        assert daemon.proc.proc.poll() is None  # never stopped
    finally:
        await stack.close()
