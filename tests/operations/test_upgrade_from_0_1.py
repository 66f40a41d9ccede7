"""An installation of 0.1, upgraded: its config.yaml (from git history, tests/fixtures/config/) unchanged
but for the addresses of this test's simulators and database, and a database 0.1 migrated. The
daemon starts, warns once about each old spelling, migrates the database forward (recording the
checksums 0.1 did not) and syncs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from daemon.store.migrations import available
from tests.acceptance.harness import INTACCT_CREDS, REPO, ST_CREDS, Client, Daemon, Process, Stack, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
CONFIG_0_1 = REPO / "tests" / "fixtures" / "config" / "config-0.1.yaml"
SCHEMA_0_1 = ("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
              " applied_at timestamptz NOT NULL DEFAULT now())")


async def _database_as_0_1_left_it(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await conn.execute(SCHEMA_0_1)
        for m in available()[:2]:
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
    finally:
        await conn.close()


async def test_a_0_1_installation_upgrades(stack: Stack, tmp_path: Path) -> None:
    await _database_as_0_1_left_it(stack.dsn)
    port = free_port()
    text = (CONFIG_0_1.read_text()
            .replace("postgresql://postgres@127.0.0.1:5432/st_intacct_sync", stack.dsn)
            .replace("state_dir: ./state", f"state_dir: {tmp_path / 'state'}")
            .replace("127.0.0.1:8080", f"127.0.0.1:{port}")
            .replace("https://api.servicetitan.io", stack.st.base)
            .replace("https://auth.servicetitan.io/connect/token", stack.st.base + "/connect/token")
            .replace("https://api.intacct.com/ia/xml/xmlgw.phtml", stack.ia.base + "/ia/xml/xmlgw.phtml"))
    assert text.count(stack.st.base) == 2 and stack.dsn in text  # only addresses changed
    path = tmp_path / "config.yaml"
    path.write_text(text)
    env = {"ST_INTACCT_SYNC_TOKEN": "local-token-0123456789", "ST_APP_KEY": ST_CREDS["app_key"],
           "ST_CLIENT_ID": ST_CREDS["client_id"], "ST_CLIENT_SECRET": ST_CREDS["client_secret"],
           "INTACCT_SENDER_ID": INTACCT_CREDS["sender_id"], "INTACCT_SENDER_PASSWORD": INTACCT_CREDS["sender_password"],
           "INTACCT_COMPANY_ID": INTACCT_CREDS["company_id"], "INTACCT_USER_ID": INTACCT_CREDS["user_id"],
           "INTACCT_USER_PASSWORD": INTACCT_CREDS["user_password"]}

    checked = subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(path), "check-config"],
                             capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, **env})
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip().splitlines() == [
        f"warning: {path}: report.email.starttls: is deprecated: write report.email.tls: none instead"]

    proc = Process([sys.executable, "-m", "daemon.cli", "--config", str(path), "run"], tmp_path / "daemon.log", env=env)
    stack.processes.append(proc)
    daemon = Daemon(proc, Client(stack.session, f"http://127.0.0.1:{port}"), path, env["ST_INTACCT_SYNC_TOKEN"])
    await daemon.wait_up()
    customer = await stack.st.customer("Upgrade Ltd")
    job = await stack.st.job(customer["id"])
    await daemon.wait_state("job", job["id"], "synced")
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [(r["version"], r["checksum"]) for r in rows] == [(m.version, m.checksum) for m in available()]
    assert proc.output().count('"config_warning"') == 1
    assert proc.stop(60) == 0
