"""Commands that only read need no secret, and no command hangs on a database that does not answer.

An admin shell has neither the service's environment nor read access to its secret files: `status`,
`migrate` and `retry` still work there. Every command that needs the database gives up after
`database.connect_timeout` with one line on stderr and exit 1, whether nothing listens or a server
accepts the connection and then never answers.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.acceptance.harness import REPO, Stack, free_port

pytestmark = pytest.mark.timeout(120)


def cli(config: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env)


def admin_config(config: dict[str, Any], tmp_path: Path) -> Path:
    """The service's config as an admin shell sees it: secrets in files it cannot read, or ${VARS} unset."""
    admin = yaml.safe_load(yaml.safe_dump(config))
    for section, keys in (("servicetitan", ("app_key", "client_secret")),
                          ("intacct", ("sender_password", "user_password"))):
        for key in keys:
            admin[section].pop(key)
            admin[section][f"{key}_file"] = str(tmp_path / "credentials-root-only" / key)
    admin["http"]["token"] = "${ST_INTACCT_SYNC_TOKEN_NOT_IN_THIS_SHELL}"
    path = tmp_path / "admin.yaml"
    path.write_text(yaml.safe_dump(admin))
    return path


async def test_status_migrate_retry_in_an_admin_shell(stack: Stack, tmp_path: Path) -> None:
    config = stack.config()
    daemon = await stack.start_daemon(config)
    admin = admin_config(config, tmp_path)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("ST_INTACCT_SYNC_TOKEN")}

    # The daemon's own strictness is unchanged: this file would not start it.
    strict = cli(admin, "check-config", env=env)
    assert strict.returncode == 2 and "cannot read" in strict.stderr

    status = cli(admin, "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "tenant 1234567" in status.stdout and "intacct" in status.stdout
    migrate = cli(admin, "migrate", env=env)
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout.strip() == "database schema is up to date"
    retry = cli(admin, "retry", "--failed", env=env)
    assert retry.returncode == 0, retry.stderr
    assert retry.stdout.strip() == "0 failed record(s) moved back to pending"
    assert await daemon.status()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port whose server accepts connections (the kernel does) and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


def _config(tmp_path: Path, dsn: str) -> Path:
    config = {
        "database": {"dsn": dsn, "connect_timeout": "2s"},
        "servicetitan": {"tenant_id": 1, "api_base_url": "http://127.0.0.1:9", "auth_url": "http://127.0.0.1:9/t",
                         "app_key": "ak-x1", "client_id": "c", "client_secret": "cs-x1"},
        "intacct": {"endpoint_url": "http://127.0.0.1:9/x", "sender_id": "s", "sender_password": "sp-x1",
                    "company_id": "c", "user_id": "u", "user_password": "up-x1"},
        "logging": {"format": "json"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)  # it holds secrets: a readable file would add a warning line
    return path


COMMANDS = [["migrate"], ["retry", "--failed"], ["sync", "--job", "1"], ["backfill", "--since", "2026-01-01"],
            ["reconcile", "--no-email"]]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
@pytest.mark.parametrize("server", ["silent", "refusing"])
def test_no_command_waits_for_ever(args: list[str], server: str, silent_server: int, tmp_path: Path) -> None:
    port = silent_server if server == "silent" else free_port()
    config = _config(tmp_path, f"postgresql://postgres@127.0.0.1:{port}/st_intacct_sync")
    started = time.monotonic()
    result = cli(config, *args, timeout=30)
    took = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"st-intacct-sync {args[0]}: the database at postgresql://")
    assert "did not answer within 2 s" in lines[0]
    assert took < 10, took
