"""`st-intacct-sync check --mail --intacct --servicetitan` and `--version`, as an operator runs them.

Each check logs in (or sends) for real and prints one line of what it found; exit 0 when all
passed, 1 when one failed, 2 when the configuration cannot be used for it.
"""

from __future__ import annotations

import email
import subprocess
import sys
from email import policy
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.acceptance.harness import INTACCT_CREDS, REPO, Stack, free_port

pytestmark = pytest.mark.timeout(180)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


def cli(config: dict[str, Any], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(path), "check", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_version() -> None:
    from daemon.version import VERSION

    result = subprocess.run([sys.executable, "-m", "daemon.cli", "--version"], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == f"st-intacct-sync {VERSION}"
    assert VERSION and VERSION[0].isdigit()


async def test_every_check_passes_then_each_fails_clearly(stack: Stack, tmp_path: Path) -> None:
    box = Inbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        config = stack.config(report={"email": {"to": ["books@example.com"], "from": "sync@example.com",
                                                "smtp_host": "127.0.0.1", "smtp_port": smtp.port}})
        passed = cli(config, tmp_path)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        lines = passed.stdout.strip().splitlines()
        assert [line.split(":")[0].split(" ")[0] for line in lines] == ["mail", "intacct", "servicetitan"], lines
        assert "sent a test message to books@example.com through 127.0.0.1" in lines[0]
        assert lines[1].startswith("intacct (xml API): signed in") and "company ACME" in lines[1]
        assert "user xml_gateway" in lines[1] and f"session endpoint {stack.ia.base}" in lines[1]
        assert lines[2].startswith("servicetitan: got a token") and "tenant 1234567" in lines[2]
        assert "token expires in s" in lines[2]
        [message] = box.messages
        assert message["Subject"].startswith("[st-intacct-sync] Test message from ")
        assert message["Auto-Submitted"] == "auto-generated"
        for secret in (INTACCT_CREDS["user_password"], INTACCT_CREDS["sender_password"]):
            assert secret not in passed.stdout + passed.stderr

        # One at a time, and each failure says which and why, with exit 1.
        wrong = {**config, "intacct": {**config["intacct"], "user_password": "wrong-password-1"}}
        failed = cli(wrong, tmp_path, "--intacct")
        assert failed.returncode == 1
        assert failed.stdout.startswith("intacct: FAILED (connection): ") and "wrong-password-1" not in failed.stdout
        only_st = cli(wrong, tmp_path, "--servicetitan")
        assert only_st.returncode == 0 and only_st.stdout.startswith("servicetitan: got a token")
        no_smtp = {**config, "report": {"email": {**config["report"]["email"], "smtp_port": free_port()}}}
        unreachable = cli(no_smtp, tmp_path, "--mail")
        assert unreachable.returncode == 1 and unreachable.stdout.startswith("mail: FAILED (transient): ")
        without = cli({k: v for k, v in config.items() if k != "report"}, tmp_path, "--mail")
        assert without.returncode == 2 and "report.email is not configured" in without.stdout
    finally:
        smtp.stop()
