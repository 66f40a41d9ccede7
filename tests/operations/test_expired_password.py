"""The README's procedure for an expired Intacct password, as an operator runs it under systemd.

The secrets are files the config names with `*_file` (systemd/st-intacct-sync.service explains why not
LoadCredential=). The procedure: replace the file (atomically, as `install` does), then
`systemctl reload` (SIGHUP to the main PID, the unit's ExecReload=). Every record that waited in
`blocked-by-connection` resumes; nothing is lost. A restart works as well; it is the same file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.acceptance.harness import INTACCT_CREDS, REPO, Stack, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROTATED = "rotated-user-password-7"


def install_secret(path: Path, value: str) -> None:
    """What `install -m 0640 -g st-intacct-sync new-file path` does: a new file renamed over the old one."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(value + "\n")
    os.chmod(fresh, 0o640)
    os.replace(fresh, path)


async def test_replace_the_credential_file_then_reload(stack: Stack, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o750)
    files = {"sender_password": credentials / "intacct_sender_password",
             "user_password": credentials / "intacct_user_password"}
    for key, path in files.items():
        install_secret(path, INTACCT_CREDS[key])
    intacct = {k: v for k, v in INTACCT_CREDS.items() if k not in files}
    config = stack.config(intacct={**intacct, "probe_interval": "1s",
                                   **{f"{k}_file": str(p) for k, p in files.items()}})
    for key in files:
        config["intacct"].pop(key, None)
    daemon = await stack.start_daemon(config)
    customer = await stack.st.customer("Expired & Co")
    first = await stack.st.job(customer["id"])
    await daemon.wait_state("job", first["id"], "synced")

    # The password expires in Intacct: the daemon's connection goes to error, new work waits.
    await stack.ia.credentials(**{**INTACCT_CREDS, "user_password": ROTATED})
    waiting = [await stack.st.job(customer["id"]) for _ in range(5)]
    await wait_until(lambda: _intacct_state(daemon, "error"), 30, "the Intacct connection in error")
    await daemon.wait_queue(lambda q: q["blocked-by-connection"] == len(waiting), 30, "the new jobs blocked")

    # The procedure: replace the file, then reload.
    install_secret(files["user_password"], ROTATED)
    daemon.hup()
    for job in waiting:
        record = await daemon.wait_state("job", job["id"], "synced", timeout=30)
        assert record["attempts"] <= 1
    assert await _intacct_state(daemon, "ok")
    log = daemon.proc.output()
    assert ROTATED not in log and INTACCT_CREDS["user_password"] not in log
    assert daemon.proc.stop(60) == 0


def test_the_readme_gives_this_procedure() -> None:
    """The troubleshooting row says what the test above does, and nothing that would not work."""
    readme = (REPO / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| Records missing after Intacct credentials"))
    assert "systemctl reload" in row and "user_password_file" in row
    # Every secret file the README shows is a path the daemon reads itself, not a LoadCredential= id.
    shown = re.findall(r"^\s*\w+_file: (\S+)$", readme, re.M)
    assert shown and all(path.startswith("/etc/st-intacct-sync/credentials/") for path in shown), shown


async def _intacct_state(daemon: object, state: str) -> bool:
    status = await daemon.status()  # type: ignore[attr-defined]
    return bool(status["connections"]["intacct"]["state"] == state)
