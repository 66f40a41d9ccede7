"""daemon.config: the configuration file into frozen dataclasses, and one clear line for every mistake."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config.durations import parse_duration
from daemon.config.loading import Config, ConfigError, load_config, load_config_text, parse_config
from daemon.config.secret import Secret, interpolate
from statemachine.settings import FieldMapping, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]

# Every variable the shipped config.yaml names, with values that cannot occur by accident.
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

MINIMAL: dict[str, object] = {
    "servicetitan": {"tenant_id": 42, "app_key": "ak-sekrit-1", "client_id": "cid", "client_secret": "cs-sekrit-2"},
    "intacct": {
        "sender_id": "sid",
        "sender_password": "sp-sekrit-3",
        "company_id": "co",
        "user_id": "uid",
        "user_password": "up-sekrit-4",
    },
}
DELETE = object()


def document(changes: dict[str, object] | None = None) -> dict[str, object]:
    """MINIMAL with dotted-path `changes` applied (DELETE removes a key)."""
    data = copy.deepcopy(MINIMAL)
    for path, value in (changes or {}).items():
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return data


def config(changes: dict[str, object] | None = None, env: dict[str, str] | None = None) -> Config:
    return load_config_text(yaml.safe_dump(document(changes)), "config.yaml", env or {})


def error(changes: dict[str, object] | None = None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        config(changes, env)
    return one_line(info.value)


def text_error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "config.yaml", env or {})
    return one_line(info.value)


def one_line(exc: ConfigError) -> str:
    message = str(exc)
    assert "\n" not in message and "\r" not in message
    return message


# --- the shipped example and the defaults ---------------------------------------------------------


def test_shipped_config_loads_with_its_environment() -> None:
    cfg = load_config(REPO_ROOT / "config.yaml", SHIPPED_ENV)
    assert cfg.servicetitan.tenant_id == 1234567
    assert cfg.servicetitan.client_id == "cid.abc123"
    assert cfg.intacct.user_password.reveal() == "up-Hunter2#y"
    assert cfg.http.token == Secret("tok-9f8e7d6c5b4a")
    assert cfg.report.email is not None and cfg.report.email.to == ("accounting@example.com",)
    assert cfg.report.email.sender == "st-intacct-sync@example.com"
    assert cfg.intacct.entity_id is None
    assert set(cfg.secrets()) == {
        SHIPPED_ENV[k]
        for k in (
            "ST_INTACCT_SYNC_TOKEN",
            "ST_APP_KEY",
            "ST_CLIENT_SECRET",
            "INTACCT_SENDER_PASSWORD",
            "INTACCT_USER_PASSWORD",
        )
    }


def test_shipped_config_values_are_the_defaults() -> None:
    """The example documents the defaults: a minimal file must mean the same thing."""
    shipped = load_config(REPO_ROOT / "config.yaml", SHIPPED_ENV).public_dict()
    minimal = config().public_dict()
    for section in ("database", "settings", "mapping", "sync", "reconcile", "logging"):
        assert minimal[section] == shipped[section], section
    assert minimal["state_dir"] == shipped["state_dir"]
    assert minimal["http"]["listen"] == shipped["http"]["listen"]
    for key in ("api_base_url", "auth_url", "poll_interval", "include_recent_changes"):
        assert minimal["servicetitan"][key] == shipped["servicetitan"][key]
    for key in (
        "endpoint_url",
        "entity_id",
        "max_concurrent_requests",
        "max_functions_per_request",
        "request_timeout",
        "probe_interval",
        "session_max_age",
    ):
        assert minimal["intacct"][key] == shipped["intacct"][key]
    assert minimal["report"]["send"] == shipped["report"]["send"]


def test_defaults() -> None:
    cfg = config()
    assert cfg.database.dsn == "postgresql://postgres@127.0.0.1:5432/st_intacct_sync"
    assert cfg.state_dir == Path("./state")
    assert (cfg.http.host, cfg.http.port, cfg.http.token) == ("127.0.0.1", 8080, None)
    assert cfg.servicetitan.api_base_url == "https://api.servicetitan.io"
    assert cfg.servicetitan.auth_url == "https://auth.servicetitan.io/connect/token"
    assert cfg.servicetitan.poll_interval == timedelta(seconds=2.2)
    assert cfg.servicetitan.include_recent_changes is True
    assert cfg.intacct.endpoint_url == "https://api.intacct.com/ia/xml/xmlgw.phtml"
    assert (cfg.intacct.max_concurrent_requests, cfg.intacct.max_functions_per_request) == (2, 50)
    assert cfg.intacct.request_timeout == timedelta(seconds=60)
    assert cfg.intacct.probe_interval == timedelta(seconds=30)
    assert cfg.intacct.session_max_age == timedelta(minutes=30)
    assert cfg.settings == Settings()
    assert cfg.mapping == FieldMapping()
    assert (cfg.sync.workers, cfg.sync.max_attempts) == (4, 10)
    assert (cfg.sync.backoff_initial, cfg.sync.backoff_max) == (timedelta(seconds=2), timedelta(minutes=10))
    assert cfg.sync.lease == timedelta(seconds=60)
    assert (cfg.reconcile.interval, cfg.reconcile.scope, cfg.reconcile.repair) == (
        timedelta(hours=1),
        "activated",
        True,
    )
    report = cfg.report
    assert (report.send, report.email, report.daily_at, report.timezone) == ("on-change", None, None, "UTC")
    assert (cfg.logging.format, cfg.logging.level) == ("auto", "info")


def test_config_is_frozen() -> None:
    cfg = config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sync.workers = 9  # type: ignore[misc]


def test_parse_config_takes_parsed_yaml() -> None:
    assert parse_config(document(), "inline", {}).servicetitan.tenant_id == 42


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (15, 15.0),
        (0.5, 0.5),
        ("0.5s", 0.5),
        ("15s", 15.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("2d", 172800.0),
        ("1m30s", 90.0),
        ("90", 90.0),
        (".5s", 0.5),
        (" 2s ", 2.0),
        ("1d2h3m4s5ms", 93784.005),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "value", ["soon", "", "15 s", "10x", "1m1h", "1s1s", "-5s", "s", True, None, [1], "inf", "1e3"]
)
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_duration_in_the_file() -> None:
    assert config({"sync.lease": "1h30m", "reconcile.interval": 90.5}).sync.lease == timedelta(minutes=90)
    assert config({"reconcile.interval": 90.5}).reconcile.interval == timedelta(seconds=90.5)


# --- reading the file -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert one_line(info.value) == f"{path}: cannot read the file: No such file or directory"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path, {})


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"state_dir: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: not UTF-8 text"):
        load_config(path, {})


def test_yaml_syntax_error_names_the_line() -> None:
    message = text_error("servicetitan:\n  tenant_id: 1\n  client_id: [unclosed\nintacct: {}\n")
    assert message.startswith("config.yaml: line ")
    assert "line 4" in message or "line 5" in message


def test_yaml_indentation_error_names_the_line() -> None:
    message = text_error("servicetitan:\n  tenant_id: 1\n   client_id: x\n")
    assert message.startswith("config.yaml: line 3: ")


def test_duplicate_key_is_refused() -> None:
    message = text_error("settings: {}\nlogging: {}\nsettings: {}\n")
    assert message == "config.yaml: line 3: duplicate key 'settings' (first at line 1)"


def test_top_level_must_be_a_mapping() -> None:
    assert text_error("- a\n- b\n") == "config.yaml: expected a mapping of sections at the top level, got a list"


def test_empty_file() -> None:
    assert "the file is empty" in text_error("# nothing\n")


def test_section_must_be_a_mapping() -> None:
    assert error({"http": "127.0.0.1:8080"}) == "config.yaml: http: expected a mapping of keys, got '127.0.0.1:8080'"


def test_empty_section_reads_as_defaults() -> None:
    assert load_config_text(yaml.safe_dump(document()) + "sync:\n", "c", {}).sync.workers == 4


# --- unknown keys, types, ranges, required --------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"intacct.sender_pasword": "x"}, "config.yaml: intacct.sender_pasword: unknown key"),
        ({"colour": "red"}, "config.yaml: colour: unknown key"),
        (
            {"report.email": {"to": ["a@b.c"], "from": "d@e.f", "smtp_hots": "x"}},
            "config.yaml: report.email.smtp_hots: unknown key",
        ),
        ({"settings.enable_everything": True}, "config.yaml: settings.enable_everything: unknown key"),
    ],
)
def test_unknown_keys(changes: dict[str, object], expected: str) -> None:
    assert error(changes).startswith(expected)


def test_unknown_key_suggests_the_near_one() -> None:
    assert error({"intacct.sender_pasword": "x"}).endswith("(did you mean sender_password?)")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"servicetitan.poll_interval": "soon"},
            "servicetitan.poll_interval: expected a duration like 15s, 10m, 1h or a number of seconds, got 'soon'",
        ),
        ({"intacct.max_concurrent_requests": "two"}, "intacct.max_concurrent_requests: expected an integer, got 'two'"),
        ({"intacct.max_concurrent_requests": 2.5}, "intacct.max_concurrent_requests: expected an integer, got 2.5"),
        ({"sync.workers": True}, "sync.workers: expected an integer, got true"),
        (
            {"servicetitan.include_recent_changes": "true"},
            "servicetitan.include_recent_changes: expected true or false, got 'true'",
        ),
        ({"reconcile.repair": 1}, "reconcile.repair: expected true or false, got 1"),
        ({"servicetitan.tenant_id": "abc"}, "servicetitan.tenant_id: expected an integer, got 'abc'"),
        ({"intacct.company_id": 12345}, "intacct.company_id: expected a string, got 12345 (quote it)"),
        ({"servicetitan.client_id": ["a"]}, "servicetitan.client_id: expected a string, got a list"),
        ({"servicetitan.client_secret": {"a": 1}}, "servicetitan.client_secret: expected a string, got a mapping"),
        ({"reconcile.scope": "some"}, "reconcile.scope: expected one of activated, all, got 'some'"),
        ({"report.send": "never"}, "report.send: expected one of on-change, on-exceptions, always, got 'never'"),
        ({"logging.format": "xml"}, "logging.format: expected one of auto, json, console, got 'xml'"),
        ({"logging.level": "loud"}, "logging.level: expected one of debug, info, warning, error, critical"),
        ({"sync.lease": None}, "sync.lease: expected a duration like 15s, 10m, 1h or a number of seconds, got null"),
        ({"servicetitan.api_base_url": "ftp://x"}, "servicetitan.api_base_url: expected an http(s):// URL"),
        ({"servicetitan.auth_url": "http://[bad"}, "servicetitan.auth_url: expected an http(s):// URL"),
        ({"intacct.endpoint_url": "https://h:port/x"}, "intacct.endpoint_url: expected an http(s):// URL"),
        (
            {"intacct.user_password_file": "/x\0y", "intacct.user_password": DELETE},
            "intacct.user_password_file: the path contains a NUL character",
        ),
        ({"http.listen": "8080"}, "http.listen: expected HOST:PORT like 127.0.0.1:8080 or [::1]:8080, got '8080'"),
        ({"http.listen": "::1:8080"}, "http.listen: expected HOST:PORT"),
        ({"http.listen": "[zz::1]:8080"}, "http.listen: expected HOST:PORT"),
        ({"http.listen": "999.1.1.1:80"}, "http.listen: expected HOST:PORT"),
        (
            {"report.email": {"to": "nobody", "from": "a@b.c"}},
            "report.email.to[0]: expected an email address, got 'nobody'",
        ),
        ({"report.email": {"to": [], "from": "a@b.c"}}, "report.email.to: expected a list of strings, got a list"),
        (
            {"database.dsn": "mysql://u@h/db"},
            "database.dsn: expected a postgresql://user@host:port/database URL or embedded",
        ),
    ],
)
def test_wrong_types(changes: dict[str, object], expected: str) -> None:
    assert error(changes).startswith(f"config.yaml: {expected}")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sync.workers": 0}, "sync.workers: must be between 1 and 1000, got 0"),
        ({"sync.max_attempts": -1}, "sync.max_attempts: must be between 1 and 1000, got -1"),
        ({"mapping.name_max_length": 0}, "mapping.name_max_length: must be between 1 and 4000, got 0"),
        ({"mapping.name_max_length": 4001}, "mapping.name_max_length: must be between 1 and 4000, got 4001"),
        (
            {"intacct.max_functions_per_request": 501},
            "intacct.max_functions_per_request: must be between 1 and 500, got 501",
        ),
        ({"intacct.max_concurrent_requests": 0}, "intacct.max_concurrent_requests: must be between 1 and 100, got 0"),
        ({"servicetitan.tenant_id": 0}, "servicetitan.tenant_id: must be at least 1, got 0"),
        ({"servicetitan.poll_interval": 0}, "servicetitan.poll_interval: must be a positive duration, got 0"),
        ({"intacct.request_timeout": -1}, "intacct.request_timeout: must be a positive duration, got -1"),
        ({"intacct.probe_interval": "0s"}, "intacct.probe_interval: must be a positive duration, got '0s'"),
        ({"intacct.session_max_age": "0s"}, "intacct.session_max_age: must be a positive duration, got '0s'"),
        ({"sync.backoff_initial": "20m"}, "sync.backoff_initial: must not exceed sync.backoff_max (1200s > 600s)"),
        ({"http.listen": "127.0.0.1:70000"}, "http.listen: port must be between 0 and 65535, got 70000"),
        (
            {"report.email": {"to": ["a@b.c"], "from": "d@e.f", "smtp_port": 0}},
            "report.email.smtp_port: must be between 1 and 65535, got 0",
        ),
    ],
)
def test_out_of_range(changes: dict[str, object], expected: str) -> None:
    assert error(changes) == f"config.yaml: {expected}"


@pytest.mark.parametrize(
    "path",
    [
        "servicetitan.tenant_id",
        "servicetitan.app_key",
        "servicetitan.client_id",
        "servicetitan.client_secret",
        "intacct.sender_id",
        "intacct.sender_password",
        "intacct.company_id",
        "intacct.user_id",
        "intacct.user_password",
    ],
)
def test_required(path: str) -> None:
    assert error({path: DELETE}) == f"config.yaml: {path}: required"
    assert error({path: None}) == f"config.yaml: {path}: required"


@pytest.mark.parametrize("section", ["servicetitan", "intacct"])
def test_required_sections(section: str) -> None:
    assert error({section: DELETE}) == f"config.yaml: {section}: required"


def test_empty_required_values() -> None:
    assert error({"intacct.user_id": ""}) == "config.yaml: intacct.user_id: must not be empty"
    assert error({"intacct.user_password": ""}) == "config.yaml: intacct.user_password: must not be empty"


def test_email_requires_to_and_from() -> None:
    assert error({"report.email": {"from": "a@b.c"}}) == "config.yaml: report.email.to: required"
    assert error({"report.email": {"to": ["a@b.c"]}}) == "config.yaml: report.email.from: required"


def test_email_username_and_password_go_together() -> None:
    email = {"to": ["a@b.c"], "from": "d@e.f", "username": "mailer"}
    assert error({"report.email": email}) == "config.yaml: report.email.password: required with report.email.username"


def test_email_section() -> None:
    email = {
        "to": ["a@b.c", "x@y.z"],
        "from": "d@e.f",
        "smtp_host": "mail",
        "smtp_port": 587,
        "tls": "starttls",
        "username": "mailer",
        "password": "pw-sekrit-5",
    }
    cfg = config({"report.email": email, "report.send": "always"})
    assert cfg.report.send == "always"
    assert cfg.report.email is not None
    assert cfg.report.email.to == ("a@b.c", "x@y.z")
    assert (cfg.report.email.sender, cfg.report.email.smtp_host, cfg.report.email.smtp_port) == ("d@e.f", "mail", 587)
    assert cfg.report.email.tls == "starttls" and cfg.warnings == ()
    assert cfg.report.email.password == Secret("pw-sekrit-5")


def test_logging_level_is_normalised() -> None:
    assert config({"logging.level": "WARN"}).logging.level == "warning"
    assert config({"logging.level": "Debug", "logging.format": "json"}).logging == type(config().logging)(
        format="json", level="debug"
    )


def test_embedded_database() -> None:
    assert config({"database.dsn": "embedded"}).database.embedded


# --- the settings hierarchy -----------------------------------------------------------------------


def test_hierarchy_violation_names_the_key_and_its_parent() -> None:
    message = error({"settings.enable_intacct_projects": False, "settings.enable_parent_project_mapping": True})
    assert message == (
        "config.yaml: settings.enable_parent_project_mapping: is true while its parent "
        "settings.enable_intacct_projects is false (turn the parent on or this off)"
    )


def test_hierarchy_violations_are_all_named_in_one_line() -> None:
    message = error(
        {
            "settings.enable_intacct_projects": False,
            "settings.enable_customer_project_linkage": True,
            "settings.use_project_name_for_intacct_project_name": True,
        }
    )
    assert message == (
        "config.yaml: settings.enable_customer_project_linkage, "
        "settings.use_project_name_for_intacct_project_name: are true while their parent "
        "settings.enable_intacct_projects is false (turn the parent on or these off)"
    )


def test_master_off_turns_unmentioned_sub_settings_off() -> None:
    settings = config({"settings.enable_intacct_projects": False}).settings
    assert settings == Settings(False, False, False, False, False)
    assert settings.hierarchy_violations() == []


def test_settings_are_read() -> None:
    settings = config(
        {"settings.enable_customer_project_linkage": True, "settings.enable_project_automatic_synchronization": False}
    ).settings
    assert settings.customer_linkage and not settings.auto_sync


# --- mapping templates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"mapping.job_project_name": "{job_number} {colour}"},
            "mapping.job_project_name: placeholder {colour} is not allowed here (allowed: {customer_id}",
        ),
        (
            {"mapping.project_project_id": "P-{job_number}"},
            "mapping.project_project_id: placeholder {job_number} is not allowed here (allowed: {project_id} "
            "{project_number})",
        ),
        (
            {"mapping.project_name_fallback": "Project {job_id}"},
            "mapping.project_name_fallback: placeholder {job_id} is not allowed here",
        ),
        (
            {"mapping.customer_id": "C-{job_id}"},
            "mapping.customer_id: placeholder {job_id} is not allowed here (allowed: {customer_id} {customer_name})",
        ),
        (
            {"mapping.job_project_id": "J-{customer_name}"},
            "mapping.job_project_id: placeholder {customer_name} is not allowed here (allowed: {job_id} {job_number})",
        ),
        ({"mapping.job_project_id": "J-{job_number"}, "mapping.job_project_id: bad template: "),
        ({"mapping.job_project_name": "{job_number}}"}, "mapping.job_project_name: bad template: "),
        (
            {"mapping.job_project_id": "J-{job_id:06d}"},
            "mapping.job_project_id: placeholder {job_id} takes no format spec or conversion",
        ),
        ({"mapping.job_project_id": "J-{}"}, "mapping.job_project_id: placeholder {} is not allowed here"),
        ({"mapping.job_project_id": "J-{job.id}"}, "mapping.job_project_id: placeholder {job.id} is not allowed"),
        ({"mapping.job_project_id": ""}, "mapping.job_project_id: must not be empty"),
        ({"mapping.project_project_id": "  "}, "mapping.project_project_id: must not be empty"),
        ({"mapping.job_project_id": "JOB"}, "mapping.job_project_id: must contain {job_id} or {job_number}"),
        ({"mapping.job_project_id": "{job_number}"}, "mapping.job_project_id: must start with literal text"),
        ({"mapping.project_category": ""}, "mapping.project_category: must not be empty"),
    ],
)
def test_bad_templates(changes: dict[str, object], expected: str) -> None:
    assert error(changes).startswith(f"config.yaml: {expected}")


@pytest.mark.parametrize(
    ("job", "project"),
    [
        ("X-{job_number}", "X-{project_number}"),
        ("J-{job_number}", "J-P-{project_number}"),
        ("P-J{job_id}", "P-{project_id}"),
    ],
)
def test_id_templates_need_distinct_prefixes(job: str, project: str) -> None:
    message = error({"mapping.job_project_id": job, "mapping.project_project_id": project})
    assert message.startswith("config.yaml: mapping.job_project_id, mapping.project_project_id: literal prefixes ")
    assert "overlap" in message


def test_good_templates() -> None:
    mapping = config(
        {
            "mapping.job_project_id": "JOB-{job_id}",
            "mapping.project_project_id": "PRJ-{{{project_number}}}",
            "mapping.job_project_name": "{job_number} {project_name} {customer_name}",
            "mapping.customer_id": "C{customer_id}",
            "mapping.name_max_length": 80,
        }
    ).mapping
    assert mapping.project_project_id == "PRJ-{{{project_number}}}"
    assert mapping.name_max_length == 80


# --- http -----------------------------------------------------------------------------------------


def test_token_required_off_loopback() -> None:
    assert error({"http.listen": "0.0.0.0:8080"}) == (
        "config.yaml: http.token: required when http.listen is not on loopback (0.0.0.0:8080)"
    )


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("[::1]:9000", "::1", 9000),
        ("localhost:0", "localhost", 0),
        ("127.5.6.7:1", "127.5.6.7", 1),
    ],
)
def test_loopback_needs_no_token(listen: str, host: str, port: int) -> None:
    http = config({"http.listen": listen}).http
    assert (http.host, http.port, http.token, http.listen, http.loopback) == (host, port, None, listen, True)


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "sync.example.com:443"])
def test_public_listen_with_token(listen: str) -> None:
    http = config({"http.listen": listen, "http.token": "tok-sekrit-6-0123456"}).http
    assert http.token == Secret("tok-sekrit-6-0123456") and not http.loopback and http.listen == listen


# --- ${NAME} and *_file ---------------------------------------------------------------------------


def test_environment_references() -> None:
    env = {"HOST": "db.local", "PORT": "6543", "USER": "sync", "PW": "pw-sekrit-7", "TENANT": "777", "RECENT": "false"}
    cfg = config(
        {
            "database.dsn": "postgresql://${USER}:${PW}@${HOST}:${PORT}/st",
            "state_dir": "/var/lib/$${HOME}/x$y",
            "servicetitan.tenant_id": "${TENANT}",
            "servicetitan.include_recent_changes": "${RECENT}",
            "intacct.user_password": "${PW}",
        },
        env,
    )
    assert cfg.database.dsn == "postgresql://sync:pw-sekrit-7@db.local:6543/st"
    assert cfg.state_dir == Path("/var/lib/${HOME}/x$y")
    assert cfg.servicetitan.tenant_id == 777
    assert cfg.servicetitan.include_recent_changes is False
    assert cfg.intacct.user_password == Secret("pw-sekrit-7")


def test_unset_variable_names_the_key_and_the_variable() -> None:
    assert error({"intacct.sender_password": "${INTACCT_SENDER_PASSWORD}"}) == (
        "config.yaml: intacct.sender_password: environment variable INTACCT_SENDER_PASSWORD is not set"
    )


def test_optional_secret_of_an_unset_variable_is_absent() -> None:
    """The shipped `token: ${ST_INTACCT_SYNC_TOKEN}` in a unit that sets no such variable: no token."""
    cfg = config({"http.token": "${ST_INTACCT_SYNC_TOKEN}", "report.email.password": "${SMTP_PASSWORD}",
                  "report.email.to": ["a@example.com"], "report.email.from": "s@example.com"})
    assert cfg.http.token is None
    assert cfg.report.email is not None and cfg.report.email.password is None
    assert set(cfg.secrets()) == {"ak-sekrit-1", "cs-sekrit-2", "sp-sekrit-3", "up-sekrit-4"}
    # Set, the same line is the token.
    assert config({"http.token": "${T}"}, {"T": "tok-1234567890abcdef"}).http.token == Secret("tok-1234567890abcdef")


def test_optional_secret_needed_after_all_names_the_unset_variable() -> None:
    assert error({"http.listen": "0.0.0.0:8080", "http.token": "${ST_INTACCT_SYNC_TOKEN}"}) == (
        "config.yaml: http.token: required when http.listen is not on loopback (0.0.0.0:8080)"
        "; environment variable ST_INTACCT_SYNC_TOKEN is not set"
    )
    assert error({"report.email.to": ["a@example.com"], "report.email.from": "s@example.com",
                  "report.email.username": "mailer", "report.email.password": "${SMTP_PASSWORD}"}) == (
        "config.yaml: report.email.password: required with report.email.username"
        "; environment variable SMTP_PASSWORD is not set"
    )


def test_text_around_an_unset_reference_is_still_an_error() -> None:
    """Only a whole `${NAME}` can mean "absent": `tok-${SUFFIX}` means a value was intended."""
    assert error({"http.token": "tok-${SUFFIX}"}) == (
        "config.yaml: http.token: environment variable SUFFIX is not set"
    )


def test_the_login_of_the_api_not_in_use_may_name_unset_variables() -> None:
    """`api: rest` with the XML lines left as shipped (their variables unset): they are ignored."""
    xml_lines = {f"intacct.{key}": f"${{INTACCT_{key.upper()}}}"
                 for key in ("sender_id", "sender_password", "company_id", "user_id", "user_password")}
    cfg = config({**xml_lines, "intacct.api": "rest", "intacct.client_id": "rest-client",
                  "intacct.client_secret": "rc-sekrit-5", "intacct.web_services_user": "ws@acme"})
    assert (cfg.intacct.sender_id, cfg.intacct.sender_password, cfg.intacct.user_password) == (None, None, None)
    # With the XML gateway the same lines are required, and the first unset one is named.
    assert error(xml_lines) == (
        "config.yaml: intacct.sender_id: environment variable INTACCT_SENDER_ID is not set"
    )


def test_variable_not_an_integer() -> None:
    assert error({"servicetitan.tenant_id": "${T}"}, {"T": "12a"}) == (
        "config.yaml: servicetitan.tenant_id: expected an integer, got '12a'"
    )


def test_broken_reference_does_not_quote_the_value() -> None:
    message = error({"intacct.user_password": "pw-${sekrit"})
    assert message.startswith("config.yaml: intacct.user_password: has a '${' that is not a ${NAME} reference")
    assert "sekrit" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a${X}b${Y}c", "a1b2c"),
        ("$${X}", "${X}"),
        ("$$${X}", "$${X}"),
        ("a$$b", "a$$b"),
        ("$X ${X}", "$X 1"),
        ("plain", "plain"),
        ("${X}${X}", "11"),
        ("cost $5", "cost $5"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, {"X": "1", "Y": "2"}) == expected


def test_secret_files(tmp_path: Path) -> None:
    (tmp_path / "cs").write_text("cs-from-file\n")
    (tmp_path / "up").write_text("up-from-file\r\n")
    cfg = config(
        {
            "servicetitan.client_secret": DELETE,
            "servicetitan.client_secret_file": str(tmp_path / "cs"),
            "intacct.user_password": DELETE,
            "intacct.user_password_file": "${DIR}/up",
        },
        {"DIR": str(tmp_path)},
    )
    assert cfg.servicetitan.client_secret.reveal() == "cs-from-file"
    assert cfg.intacct.user_password.reveal() == "up-from-file"


def test_secret_file_relative_to_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "st_client_secret").write_text("cs-systemd\n")
    (tmp_path / "token").write_text("tok-systemd")
    cfg = config(
        {
            "servicetitan.client_secret": DELETE,
            "servicetitan.client_secret_file": "st_client_secret",
            "http.token_file": "token",
        },
        {"CREDENTIALS_DIRECTORY": str(tmp_path)},
    )
    assert cfg.servicetitan.client_secret.reveal() == "cs-systemd"
    assert cfg.http.token == Secret("tok-systemd")


def test_secret_and_its_file_twice() -> None:
    assert error({"intacct.user_password_file": "/run/x"}) == (
        "config.yaml: intacct.user_password: is given twice: set user_password or user_password_file, not both"
    )


def test_unreadable_secret_file_names_key_and_path(tmp_path: Path) -> None:
    path = tmp_path / "missing"
    message = error({"intacct.user_password": DELETE, "intacct.user_password_file": str(path)})
    assert message == f"config.yaml: intacct.user_password_file: cannot read {path}: No such file or directory"


def test_empty_secret_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    message = error({"intacct.user_password": DELETE, "intacct.user_password_file": str(tmp_path / "empty")})
    assert message == "config.yaml: intacct.user_password_file: must not be empty"


def test_secret_file_errors_never_show_the_content(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("sekrit-" * 20000)
    message = error({"intacct.user_password": DELETE, "intacct.user_password_file": str(big)})
    assert "is larger than 64 KiB" in message and "sekrit" not in message
    binary = tmp_path / "binary"
    binary.write_bytes(b"sekrit\xff")
    message = error({"intacct.user_password": DELETE, "intacct.user_password_file": str(binary)})
    assert message.endswith("is not UTF-8 text") and "sekrit\\" not in message


def test_wrong_type_for_a_secret_does_not_echo_it() -> None:
    message = error({"intacct.user_password": 987654321})
    assert message == "config.yaml: intacct.user_password: expected a string, got a number (quote it)"
    assert "987654321" not in message


def test_dsn_errors_do_not_echo_the_password() -> None:
    message = error({"database.dsn": "mysql://u:pw-sekrit-8@h/db"})
    assert "pw-sekrit-8" not in message


# --- secrets never shown --------------------------------------------------------------------------


def test_secret_value_object() -> None:
    secret = Secret("s3cr3t-value")
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == "s3cr3t-value"
    assert secret == Secret("s3cr3t-value") and secret != Secret("other") and secret != "s3cr3t-value"
    assert hash(secret) == hash(Secret("s3cr3t-value"))
    assert secret and not Secret("")
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret._value = "x"


def test_public_dict_and_repr_hold_no_secret(tmp_path: Path) -> None:
    (tmp_path / "mail").write_text("pw-mail-sekrit\n")
    cfg = config(
        {
            "database.dsn": "postgresql://sync:pw-db%40sekrit@db:5432/st?sslmode=require",
            "http.listen": "0.0.0.0:8443",
            "http.token": "tok-sekrit-6-0123456",
            "report.email": {
                "to": ["a@b.c"],
                "from": "d@e.f",
                "username": "mailer",
                "password_file": str(tmp_path / "mail"),
            },
        }
    )
    secrets = cfg.secrets()
    assert {
        "ak-sekrit-1",
        "cs-sekrit-2",
        "sp-sekrit-3",
        "up-sekrit-4",
        "tok-sekrit-6-0123456",
        "pw-mail-sekrit",
        "pw-db%40sekrit",
        "pw-db@sekrit",
    } <= set(secrets)
    public = cfg.public_dict()
    dumped = json.dumps(public)
    shown = repr(cfg)
    for value in secrets:
        assert value not in dumped
        assert value not in shown
    assert public["database"]["dsn"] == "postgresql://sync:***@db:5432/st?sslmode=require"
    assert public["http"] == {"listen": "0.0.0.0:8443", "token": "***", "allowed_hosts": []}
    for key in ("app_key", "client_secret"):
        assert public["servicetitan"][key] == "***"
    for key in ("sender_password", "user_password"):
        assert public["intacct"][key] == "***"
    assert public["report"]["email"]["password"] == "***"
    assert public["report"]["email"]["from"] == "d@e.f"


def test_public_dict_shape() -> None:
    public = config({"database.dsn": "postgresql://u@h/db?password=pw-q-sekrit"}).public_dict()
    assert public["http"]["token"] is None
    assert public["servicetitan"]["poll_interval"] == 2.2
    assert public["sync"]["backoff_max"] == 600.0
    assert public["settings"]["enable_intacct_projects"] is True
    assert public["mapping"]["job_project_id"] == "J-{job_number}"
    assert public["report"] == {"send": "on-change", "daily_at": None, "timezone": "UTC", "email": None}
    assert public["database"]["dsn"] == "postgresql://u@h/db?password=***"
    assert json.loads(json.dumps(public)) == public
