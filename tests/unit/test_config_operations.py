"""Configuration keys for operators and accountants: report cadence, time zone, mail TLS, old spellings of
0.1 (accepted with one warning each), lenient reads for commands that need no secret, connect timeout."""

from __future__ import annotations

import copy
import subprocess
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
CONFIG_0_1 = REPO / "tests" / "fixtures" / "config" / "config-0.1.yaml"
COMMIT_0_1 = "1684c565ba538295a921f5a52007300e3713c5b3"  # the config.yaml that 0.1.0 shipped
ENV_0_1 = {"ST_INTACCT_SYNC_TOKEN": "tok-0a1b2c3d", "ST_APP_KEY": "ak-0a1b2c3d", "ST_CLIENT_ID": "cid",
           "ST_CLIENT_SECRET": "cs-0a1b2c3d", "INTACCT_SENDER_ID": "sid", "INTACCT_SENDER_PASSWORD": "sp-0a1b2c3d",
           "INTACCT_COMPANY_ID": "co", "INTACCT_USER_ID": "uid", "INTACCT_USER_PASSWORD": "up-0a1b2c3d"}

BASE: dict[str, Any] = {
    "servicetitan": {"tenant_id": 42, "app_key": "ak-sekrit-1", "client_id": "cid", "client_secret": "cs-sekrit-2"},
    "intacct": {"sender_id": "sid", "sender_password": "sp-sekrit-3", "company_id": "co", "user_id": "uid",
                "user_password": "up-sekrit-4"},
}
EMAIL = {"to": ["books@example.com"], "from": "sync@example.com", "smtp_host": "127.0.0.1"}


def parse(report: dict[str, Any] | None = None, env: dict[str, str] | None = None, **sections: Any) -> Any:
    data = copy.deepcopy(BASE)
    if report is not None:
        data["report"] = report
    data.update(sections)
    return parse_config(data, "config.yaml", env or {})


def error(report: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(report)
    return str(caught.value)


# ---- report.send, daily_at, timezone -------------------------------------------------------------


@pytest.mark.parametrize("send", ["on-change", "on-exceptions", "always"])
def test_send_values(send: str) -> None:
    assert parse({"send": send}).report.send == send


def test_send_default_is_on_change() -> None:
    assert parse().report.send == "on-change" and parse({}).report.daily_at is None


@pytest.mark.parametrize(("text", "expected"), [('"07:00"', time(7)), ("07:00", time(7)), ('"7:05"', time(7, 5)),
                                                ('"23:59"', time(23, 59)), ("null", None), ("off", None),
                                                ('"off"', None)])
def test_daily_at(text: str, expected: time | None) -> None:
    assert parse(yaml.safe_load(f"daily_at: {text}")).report.daily_at == expected


def test_daily_at_unquoted_is_explained() -> None:
    # YAML 1.1 reads 7:30 without quotes as the base-60 number 450.
    report = yaml.safe_load("daily_at: 7:30")
    assert report == {"daily_at": 450}
    assert error(report) == 'config.yaml: report.daily_at: expected a time like "07:00" (quote it), got 450'
    assert error({"daily_at": "25:00"}).startswith('config.yaml: report.daily_at: expected a time like "07:00"')


def test_timezone() -> None:
    assert parse({"timezone": "America/Chicago"}).report.zone.key == "America/Chicago"
    assert parse().report.timezone == "UTC"
    assert error({"timezone": "Mars/Olympus"}) == (
        "config.yaml: report.timezone: expected an IANA time zone like Europe/Paris or America/New_York, "
        "got 'Mars/Olympus'")


# ---- report.email.tls ----------------------------------------------------------------------------


@pytest.mark.parametrize(("tls", "port"), [("starttls", 25), ("implicit", 465), ("none", 25)])
def test_tls_modes_and_port_default(tls: str, port: int) -> None:
    email = parse({"email": {**EMAIL, "tls": tls}}).report.email
    assert (email.tls, email.smtp_port) == (tls, port)


def test_credentials_need_tls_off_loopback() -> None:
    login = {**EMAIL, "smtp_host": "smtp.example.com", "username": "u", "password": "pw-sekrit-9"}
    message = error({"email": {**login, "tls": "none"}})
    assert message.startswith("config.yaml: report.email.tls: must be starttls or implicit")
    assert "pw-sekrit-9" not in message
    assert parse({"email": {**login, "tls": "starttls"}}).report.email.tls == "starttls"
    # Loopback: a local relay may take a login in clear.
    assert parse({"email": {**login, "smtp_host": "127.0.0.1", "tls": "none"}}).report.email.tls == "none"


def test_tls_bad_value() -> None:
    assert error({"email": {**EMAIL, "tls": "ssl"}}) == (
        "config.yaml: report.email.tls: expected one of starttls, implicit, none, got 'ssl'")


# ---- 0.1 spellings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), [(True, "starttls"), (False, "none")])
def test_starttls_is_accepted_with_one_warning(old: bool, new: str) -> None:
    config = parse({"email": {**EMAIL, "starttls": old}})
    assert config.report.email.tls == new
    assert config.warnings == (f"config.yaml: report.email.starttls: is deprecated: write report.email.tls: {new} "
                               "instead",)


def test_old_and_new_spelling_together_are_refused() -> None:
    assert error({"email": {**EMAIL, "starttls": True, "tls": "starttls"}}) == (
        "config.yaml: report.email.starttls: is the old spelling of report.email.tls: keep only tls")


def test_the_0_1_config_file_is_the_one_0_1_shipped() -> None:
    try:
        shipped = subprocess.run(["git", "show", f"{COMMIT_0_1}:config.yaml"], cwd=REPO, capture_output=True,
                                 text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("git is not installed")
    if shipped.returncode != 0:
        pytest.skip(f"this checkout has no history of 0.1 ({shipped.stderr.strip()[:200]})")
    assert CONFIG_0_1.read_text() == shipped.stdout


def test_the_0_1_config_file_keeps_working() -> None:
    config = load_config(CONFIG_0_1, ENV_0_1)
    assert config.report.send == "on-exceptions"  # what 0.1 did, unchanged
    assert config.report.email is not None and config.report.email.tls == "none"
    assert config.warnings == ("config-0.1.yaml: report.email.starttls: is deprecated: write report.email.tls: "
                               "none instead".replace("config-0.1.yaml", str(CONFIG_0_1)),)


# ---- lenient reads and the connect timeout -------------------------------------------------------


def test_lenient_read_needs_no_secret(tmp_path: Path) -> None:
    """What `status`, `migrate` and `retry` read in an admin shell: no variable set, no secret file readable."""
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    shipped["intacct"]["user_password_file"] = str(tmp_path / "missing")
    del shipped["intacct"]["user_password"]
    shipped["http"]["listen"] = "0.0.0.0:8080"  # off loopback: the token is required for the daemon
    with pytest.raises(ConfigError):
        parse_config(shipped, "config.yaml", {})
    config = parse_config(shipped, "config.yaml", {}, lenient=True)
    assert not config.secrets_read and config.secrets() == ()
    assert config.http.token is None and config.database.dsn.startswith("postgresql://")
    assert config.servicetitan.tenant_id == 1234567


def test_lenient_read_still_refuses_a_broken_file() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({**BASE, "databse": {}}, "config.yaml", {}, lenient=True)


def test_lenient_read_keeps_the_secrets_it_can_read() -> None:
    config = parse_config({**BASE, "http": {"listen": "0.0.0.0:8080", "token": "${TOKEN}"}}, "config.yaml",
                          {"TOKEN": "tok-readable-0123456"}, lenient=True)
    assert config.http.token is not None and config.http.token.reveal() == "tok-readable-0123456"


def test_connect_timeout() -> None:
    assert parse().database.connect_timeout == timedelta(seconds=10)
    assert parse(database={"connect_timeout": "3s"}).database.connect_timeout == timedelta(seconds=3)
