"""`st-intacct-sync check-config` as operators run it: a real process, exit codes, one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_ENV = {
    "ST_INTACCT_SYNC_TOKEN": "tok-9f8e7d6c5b4a",
    "ST_APP_KEY": "ak-1a2b3c4d5e6f",
    "ST_CLIENT_ID": "cid.abc123",
    "ST_CLIENT_SECRET": "cs-zz9plural",
    "INTACCT_SENDER_ID": "sender-acme",
    "INTACCT_SENDER_PASSWORD": "sp-Qw3rty!x",
    "INTACCT_COMPANY_ID": "acme-co",
    "INTACCT_USER_ID": "xml_gateway",
    "INTACCT_USER_PASSWORD": "up-Hunter2#y",
}
SECRET_VARS = (
    "ST_INTACCT_SYNC_TOKEN",
    "ST_APP_KEY",
    "ST_CLIENT_SECRET",
    "INTACCT_SENDER_PASSWORD",
    "INTACCT_USER_PASSWORD",
)


def check_config(path: Path | str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in SHIPPED_ENV and k != "ST_INTACCT_SYNC_CONFIG"}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "--config", str(path), "check-config"],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def shipped_with(tmp_path: Path, text_edit: tuple[str, str] | None = None, extra: str = "") -> Path:
    text = (REPO_ROOT / "config.yaml").read_text()
    if text_edit:
        assert text_edit[0] in text
        text = text.replace(text_edit[0], text_edit[1], 1)
    path = tmp_path / "config.yaml"
    path.write_text(text + extra)
    return path


def assert_bad_input(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def test_shipped_config_is_valid_and_masks_secrets() -> None:
    result = check_config("config.yaml", SHIPPED_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "config OK: config.yaml"
    for name in SECRET_VARS:
        assert SHIPPED_ENV[name] not in result.stdout
        assert SHIPPED_ENV[name] not in result.stderr
    shown = yaml.safe_load(result.stdout.rsplit("config OK:", 1)[0])
    assert shown["http"]["token"] == "***"
    assert shown["servicetitan"]["client_secret"] == "***"
    assert shown["intacct"]["user_password"] == "***"
    assert shown["servicetitan"]["client_id"] == "cid.abc123"
    assert shown["settings"]["enable_intacct_projects"] is True
    assert shown["servicetitan"]["poll_interval"] == 2.2


def test_config_path_from_the_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "check-config"],
        cwd=REPO_ROOT,
        env={**os.environ, **SHIPPED_ENV, "ST_INTACCT_SYNC_CONFIG": str(REPO_ROOT / "config.yaml")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"config OK: {REPO_ROOT / 'config.yaml'}"


def test_broken_hierarchy(tmp_path: Path) -> None:
    path = shipped_with(tmp_path, ("enable_intacct_projects: true", "enable_intacct_projects: false"))
    line = assert_bad_input(check_config(path, SHIPPED_ENV))
    assert line.startswith(f"{path}: ")
    assert "settings.enable_parent_project_mapping" in line
    assert "settings.enable_intacct_projects" in line


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("servicetitan:\n  tenant_id: 1\n   client_id: x\n")
    line = assert_bad_input(check_config(path))
    assert line.startswith(f"{path}: line 3: ")


def test_unknown_key(tmp_path: Path) -> None:
    path = shipped_with(tmp_path, ("  sender_password:", "  sender_pasword:"))
    line = assert_bad_input(check_config(path, SHIPPED_ENV))
    assert line.startswith(f"{path}: intacct.sender_pasword: unknown key")


def test_string_where_a_number_belongs(tmp_path: Path) -> None:
    path = shipped_with(tmp_path, ("max_concurrent_requests: 2", "max_concurrent_requests: two"))
    line = assert_bad_input(check_config(path, SHIPPED_ENV))
    assert line == f"{path}: intacct.max_concurrent_requests: expected an integer, got 'two'"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    line = assert_bad_input(check_config(path))
    assert line == f"{path}: cannot read the file: No such file or directory"


def test_missing_secret_variable() -> None:
    env = {k: v for k, v in SHIPPED_ENV.items() if k != "INTACCT_USER_PASSWORD"}
    line = assert_bad_input(check_config("config.yaml", env))
    assert line == "config.yaml: intacct.user_password: environment variable INTACCT_USER_PASSWORD is not set"
    for name in SECRET_VARS:
        assert SHIPPED_ENV[name] not in line


def test_shipped_config_without_the_optional_token_variable() -> None:
    """A first deploy on loopback sets only the API secrets: `token: ${ST_INTACCT_SYNC_TOKEN}` is absent."""
    env = {k: v for k, v in SHIPPED_ENV.items() if k != "ST_INTACCT_SYNC_TOKEN"}
    result = check_config("config.yaml", env)
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout.rsplit("config OK:", 1)[0])
    assert shown["http"]["token"] is None


def test_shipped_config_off_loopback_names_the_token_variable(tmp_path: Path) -> None:
    path = shipped_with(tmp_path, ("listen: 127.0.0.1:8080", "listen: 0.0.0.0:8080"))
    env = {k: v for k, v in SHIPPED_ENV.items() if k != "ST_INTACCT_SYNC_TOKEN"}
    line = assert_bad_input(check_config(path, env))
    assert line == (f"{path}: http.token: required when http.listen is not on loopback (0.0.0.0:8080)"
                    "; environment variable ST_INTACCT_SYNC_TOKEN is not set")


def test_usage_error_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "no-such-command"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
