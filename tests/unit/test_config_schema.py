"""The JSON Schema of config.yaml (config.schema.json): generated from the loader's own readers, kept
true here, named by config.yaml for yaml-language-server, and in agreement with the loader."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from daemon.config import ConfigError, parse_config
from daemon.config.schema import config_schema

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "config.schema.json"
ENV = {"ST_INTACCT_SYNC_TOKEN": "tok-0123456789abcdef", "ST_APP_KEY": "ak-1", "ST_CLIENT_ID": "cid",
       "ST_CLIENT_SECRET": "cs-1", "INTACCT_SENDER_ID": "sid", "INTACCT_SENDER_PASSWORD": "sp-1",
       "INTACCT_COMPANY_ID": "co", "INTACCT_USER_ID": "uid", "INTACCT_USER_PASSWORD": "up-1"}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one() -> None:
    """Regenerate with: python -m daemon.config.schema > config.schema.json"""
    assert json.loads(SCHEMA_FILE.read_text()) == config_schema()


def test_config_yaml_names_the_schema_for_editors() -> None:
    first = (REPO / "config.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=config.schema.json"


@pytest.mark.parametrize("name", ["config.yaml", "tests/fixtures/config/config-0.1.yaml"])
def test_the_shipped_and_the_0_1_files_are_valid(validator: jsonschema.Draft202012Validator, name: str) -> None:
    data = yaml.safe_load((REPO / name).read_text())
    assert [e.message for e in validator.iter_errors(data)] == []
    parse_config(data, name, ENV)  # and the loader agrees


def test_every_key_the_loader_knows_is_in_the_schema() -> None:
    schema = config_schema()
    assert list(schema["properties"]) == ["database", "state_dir", "http", "servicetitan", "intacct", "settings",
                                          "mapping", "sync", "reconcile", "report", "logging"]
    email = schema["properties"]["report"]["properties"]["email"]["properties"]
    assert email["tls"]["enum"] == ["starttls", "implicit", "none"] and email["starttls"]["deprecated"] is True
    assert {"password", "password_file"} <= set(email)
    assert schema["properties"]["servicetitan"]["required"] == ["tenant_id", "client_id"]


def _with(data: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node[part]
    node[last] = value
    return changed


@pytest.mark.parametrize(("path", "value"), [
    ("servicetitan.tenant_id", "twelve"),
    ("servicetitan.poll_interval", -3),
    ("intacct.max_concurrent_requests", 0),
    ("report.send", "hourly"),
    ("report.email.tls", "ssl"),
    ("settings.enable_intacct_projects", "yes please"),
    ("logging.format", "xml"),
    ("report.daily_at", "7h"),
    ("report.daily_at", "24:00"),
    ("http.allowed_hosts", ["sync example com"]),
    ("http.allowed_hosts", [42]),
    ("sync.colour", "red"),
    ("databse", {}),
])
def test_what_the_loader_refuses_the_schema_refuses(validator: jsonschema.Draft202012Validator, path: str,
                                                    value: object) -> None:
    data = _with(yaml.safe_load((REPO / "config.yaml").read_text()), path, value)
    assert list(validator.iter_errors(data)), f"the schema accepts {path}: {value!r}"
    with pytest.raises(ConfigError):
        parse_config(data, "config.yaml", ENV)


@pytest.mark.parametrize(("path", "value"), [
    ("report.daily_at", "07:00"),
    ("report.daily_at", "off"),
    ("report.daily_at", False),
    ("http.allowed_hosts", ["Sync.Example.com:8443", "[::1]:8080"]),
    ("http.allowed_hosts", []),
])
def test_what_the_loader_accepts_the_schema_accepts(validator: jsonschema.Draft202012Validator, path: str,
                                                    value: object) -> None:
    data = _with(yaml.safe_load((REPO / "config.yaml").read_text()), path, value)
    assert [e.message for e in validator.iter_errors(data)] == []
    parse_config(data, "config.yaml", ENV)
