"""A first deploy as systemd runs it: the shipped config.yaml, edited only as the install steps say
(addresses, the non-secret ids written in, the four API secrets as `*_file` paths), and an
environment that sets none of its `${...}` variables. The optional secrets stay as shipped: no
`ST_INTACCT_SYNC_TOKEN`, no SMTP password. The daemon must start on loopback and sync."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.harness import INTACCT_CREDS, REPO, ST_CREDS, Client, Daemon, Process, Stack, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _as_installed(stack: Stack, tmp_path: Path, port: int) -> str:
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o750)
    secrets = {"st_app_key": ST_CREDS["app_key"], "st_client_secret": ST_CREDS["client_secret"],
               "intacct_sender_password": INTACCT_CREDS["sender_password"],
               "intacct_user_password": INTACCT_CREDS["user_password"]}
    for name, value in secrets.items():
        (credentials / name).write_text(value + "\n")
        (credentials / name).chmod(0o640)
    edits = {
        "postgresql://postgres@127.0.0.1:5432/st_intacct_sync": stack.dsn,
        "state_dir: ./state": f"state_dir: {tmp_path / 'state'}",
        "127.0.0.1:8080": f"127.0.0.1:{port}",
        "https://api.servicetitan.io": stack.st.base,
        "https://auth.servicetitan.io/connect/token": stack.st.base + "/connect/token",
        "https://api.intacct.com/ia/xml/xmlgw.phtml": stack.ia.base + "/ia/xml/xmlgw.phtml",
        "app_key: ${ST_APP_KEY}": f"app_key_file: {credentials / 'st_app_key'}",
        "client_id: ${ST_CLIENT_ID}": f"client_id: {ST_CREDS['client_id']}",
        "client_secret: ${ST_CLIENT_SECRET}": f"client_secret_file: {credentials / 'st_client_secret'}",
        "sender_id: ${INTACCT_SENDER_ID}": f"sender_id: {INTACCT_CREDS['sender_id']}",
        "sender_password: ${INTACCT_SENDER_PASSWORD}":
            f"sender_password_file: {credentials / 'intacct_sender_password'}",
        "company_id: ${INTACCT_COMPANY_ID}": f"company_id: {INTACCT_CREDS['company_id']}",
        "user_id: ${INTACCT_USER_ID}": f"user_id: {INTACCT_CREDS['user_id']}",
        "user_password: ${INTACCT_USER_PASSWORD}": f"user_password_file: {credentials / 'intacct_user_password'}",
    }
    text = (REPO / "config.yaml").read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    # What the install leaves as shipped: the optional token, read from a variable nobody sets.
    assert "  token: ${ST_INTACCT_SYNC_TOKEN}" in text and "password: null" in text
    return text


async def test_the_shipped_config_starts_without_the_optional_credentials(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ST_", "INTACCT_", "CREDENTIALS_DIRECTORY")):
            monkeypatch.delenv(name)
    port = free_port()
    path = tmp_path / "config.yaml"
    path.write_text(_as_installed(stack, tmp_path, port))
    path.chmod(0o640)

    checked = subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(path), "check-config"],
                             capture_output=True, text=True, timeout=60, cwd=REPO)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""  # no warning either: nothing inline, nothing deprecated

    proc = Process([sys.executable, "-m", "daemon.cli", "--config", str(path), "run"], tmp_path / "daemon.log")
    stack.processes.append(proc)
    daemon = Daemon(proc, Client(stack.session, f"http://127.0.0.1:{port}"), path, "")
    await daemon.wait_up()
    customer = await stack.st.customer("First Deploy Co")
    job = await stack.st.job(customer["id"])
    await daemon.wait_state("job", job["id"], "synced")
    status = await daemon.status()
    assert status["connections"]["intacct"]["state"] == "ok"
    # Without a token a loopback listener takes POSTs from this machine (the documented rule).
    code, body = await daemon.http.status_and_json("POST", "/v1/ensure", {"jobs": [job["id"]], "timeout_s": 10})
    assert code == 200, body
    assert proc.stop(60) == 0
