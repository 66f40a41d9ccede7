"""Finding 8 (configuration): what the file may say about the HTTP token, the API URLs and where its
secrets sit, and finding 7 (the DSN): one masking function for every message that names a DSN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config import ConfigError, load_config, mask_dsn
from daemon.config.loading import load_config_text
from tests.acceptance.harness import REPO
from tests.unit.test_config import document

TOKEN_16 = "0123456789abcdef"


def _config(changes: dict[str, Any]) -> Any:
    return load_config_text(yaml.safe_dump(document(changes)), "config.yaml", {})


def _error(changes: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        _config(changes)
    return str(info.value)


# ---- http.token ----------------------------------------------------------------------------------


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8443", "sync.example.com:443"])
def test_a_public_listener_needs_a_token_of_16_characters(listen: str) -> None:
    assert _error({"http.listen": listen, "http.token": TOKEN_16[:-1]}) == (
        "config.yaml: http.token: must be at least 16 characters when http.listen is not on loopback "
        f"({listen}); got 15")
    assert _config({"http.listen": listen, "http.token": TOKEN_16}).http.token.reveal() == TOKEN_16


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "[::1]:8080", "localhost:8080"])
def test_loopback_takes_any_token(listen: str) -> None:
    assert _config({"http.listen": listen, "http.token": "short"}).http.token.reveal() == "short"


def test_allowed_hosts() -> None:
    http = _config({"http.allowed_hosts": ["Sync.Example.com", "proxy.internal:8443"]}).http
    assert http.allowed_hosts == ("sync.example.com", "proxy.internal:8443")
    assert _config({}).http.allowed_hosts == ()
    assert _config({"http.allowed_hosts": []}).http.allowed_hosts == ()
    for bad in ("https://sync.example.com", "sync.example.com/path", "a b", "*"):
        assert "http.allowed_hosts[0]: expected a host name" in _error({"http.allowed_hosts": [bad]}), bad


# ---- https for the APIs --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["servicetitan.api_base_url", "servicetitan.auth_url", "intacct.endpoint_url"])
def test_the_apis_need_https_off_loopback(key: str) -> None:
    assert _error({key: "http://api.example.com/x"}) == (
        f"config.yaml: {key}: must be an https:// URL (plain http only to a loopback address), "
        "got 'http://api.example.com/x'")
    for url in ("https://api.example.com/x", "http://127.0.0.1:8081/x", "http://localhost:8081/x",
                "http://[::1]:8081/x"):
        _config({key: url})  # accepted


# ---- config files readable by others -------------------------------------------------------------


def _write(tmp_path: Path, data: dict[str, Any], mode: int) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, mode)
    return path


def test_a_config_with_inline_secrets_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    data = document({"http.listen": "127.0.0.1:1"})
    for mode in (0o644, 0o640, 0o604):
        config = load_config(_write(tmp_path, data, mode), {})
        assert len(config.warnings) == 1, oct(mode)
        warning = config.warnings[0]
        assert f"{tmp_path / 'config.yaml'} is readable by" in warning and "chmod 600" in warning, warning
        assert "servicetitan.app_key" in warning and "intacct.user_password" in warning, warning
    assert load_config(_write(tmp_path, data, 0o600), {}).warnings == ()


def test_no_warning_when_the_secrets_are_not_in_the_file(tmp_path: Path) -> None:
    secrets = tmp_path / "credentials"
    secrets.mkdir()
    data = document({})
    for section, key in (("servicetitan", "app_key"), ("servicetitan", "client_secret"),
                         ("intacct", "sender_password"), ("intacct", "user_password")):
        (secrets / key).write_text("from-a-file-1234\n")
        del data[section][key]  # type: ignore[attr-defined]
        data[section][f"{key}_file"] = str(secrets / key)  # type: ignore[index]
    data["servicetitan"]["client_secret_file"] = "${CS_PATH}"  # type: ignore[index]
    data["intacct"]["user_password"] = "${IA_PASSWORD}"  # type: ignore[index]
    del data["intacct"]["user_password_file"]  # type: ignore[attr-defined]
    env = {"CS_PATH": str(secrets / "client_secret"), "IA_PASSWORD": "from-the-env-5678"}
    assert load_config(_write(tmp_path, data, 0o644), env).warnings == ()


def test_check_config_prints_the_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, document({"http.listen": "127.0.0.1:1"}), 0o644)
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(path), "check-config"],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "is readable by" in result.stderr and "chmod 600" in result.stderr, result.stderr


# ---- DSN masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("dsn", "masked"), [
    ("postgresql://app:pw-s3cret@db.example:5432/sync", "postgresql://app:***@db.example:5432/sync"),
    ("postgresql://app:p@ss-s3cret@db.example/sync", "postgresql://app:***@db.example/sync"),
    ("postgresql://app:p%40ss-s3cret@db.example/sync", "postgresql://app:***@db.example/sync"),
    ("postgresql://app@db.example/sync?password=q-s3cret&sslmode=require",
     "postgresql://app@db.example/sync?password=***&sslmode=require"),
    ("postgres://db.example/sync?sslmode=verify-full&password=q-s3cret",
     "postgres://db.example/sync?sslmode=verify-full&password=***"),
    ("postgresql://app:a@b-s3cret@h1:5432,h2:5433/sync?PASSWORD=c-s3cret&sslpassword=k-s3cret",
     "postgresql://app:***@h1:5432,h2:5433/sync?PASSWORD=***&sslpassword=***"),
    ("postgresql:///sync?host=/run/postgresql", "postgresql:///sync?host=/run/postgresql"),
    ("postgresql://app@db.example/sync", "postgresql://app@db.example/sync"),
])
def test_mask_dsn(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked
    assert "s3cret" not in mask_dsn(dsn)


def test_every_dsn_password_is_a_configured_secret() -> None:
    dsn = "postgresql://app:p@ss-s3cret@db.example/sync?password=q%2Ds3cret"
    config = _config({"database.dsn": dsn})
    assert {"p@ss-s3cret", "q%2Ds3cret", "q-s3cret"} <= set(config.secrets())
    assert "s3cret" not in repr(config.database) and "s3cret" not in str(config.public_dict())


def test_the_cli_never_prints_a_dsn_password(tmp_path: Path) -> None:
    """`migrate` against a server that does not answer: the line it gives up with names the DSN masked."""
    dsn = "postgresql://postgres:p@ss-s3cret@127.0.0.1:1/nowhere?password=q-s3cret"
    path = _write(tmp_path, document({"database.dsn": dsn, "database.connect_timeout": "2s",
                                      "http.listen": "127.0.0.1:1"}), 0o600)
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(path), "migrate"],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "did not answer within 2 s" in out and "127.0.0.1:1" in out, out
    assert "s3cret" not in out, out


def test_every_line_a_command_prints_is_redacted(tmp_path: Path) -> None:
    """Whatever a command prints after loading the configuration (an error text from a library, say)."""
    path = _write(tmp_path, document({"http.listen": "127.0.0.1:1", "intacct.user_password": 'up-"s3cret'}), 0o600)
    script = ("import argparse, sys\n"
              "from daemon.cli import commands\n"
              f"commands.load(argparse.Namespace(config={str(path)!r}))\n"
              "print('server said: bad password up-\"s3cret for', 'user')\n"
              "print('in', 'pieces: up-', end='')\n"
              "print('\"s3cret', file=sys.stdout)\n"
              "print('and on stderr: up-\"s3cret', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "server said: bad password *** for user" in result.stdout
    assert "in pieces: ***" in result.stdout and "and on stderr: ***" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
