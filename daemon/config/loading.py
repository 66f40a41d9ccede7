"""The configuration file, parsed once into frozen dataclasses that are passed explicitly.

`load_config` is the one entry point; the sections are read in `sections.py` (infrastructure) and
`settings.py` (settings and naming), each key through `reader.Section`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import yaml

from daemon.config.reader import ConfigError, Section, describe
from daemon.config.report import EmailConfig, ReconcileConfig, ReportConfig, read_reconcile, read_report
from daemon.config.secret import MASK, Secret
from daemon.config.sections import (
    DatabaseConfig,
    HttpConfig,
    IntacctConfig,
    LoggingConfig,
    ServiceTitanConfig,
    SyncConfig,
    read_database,
    read_http,
    read_intacct,
    read_logging,
    read_servicetitan,
    read_sync,
)
from daemon.config.settings import read_mapping, read_settings
from statemachine.settings import FieldMapping, Settings

__all__ = [
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "EmailConfig",
    "HttpConfig",
    "IntacctConfig",
    "LoggingConfig",
    "ReconcileConfig",
    "ReportConfig",
    "Secret",
    "ServiceTitanConfig",
    "SyncConfig",
    "load_config",
    "load_config_text",
    "parse_config",
]

TOP_KEYS = (
    "database",
    "state_dir",
    "http",
    "servicetitan",
    "intacct",
    "settings",
    "mapping",
    "sync",
    "reconcile",
    "report",
    "logging",
)


@dataclass(frozen=True)
class Config:
    """The whole configuration file, validated."""

    source: str
    database: DatabaseConfig
    state_dir: Path
    http: HttpConfig
    servicetitan: ServiceTitanConfig
    intacct: IntacctConfig
    settings: Settings
    mapping: FieldMapping
    sync: SyncConfig
    reconcile: ReconcileConfig
    report: ReportConfig
    logging: LoggingConfig
    inline_secrets: tuple[str, ...] = ()  # key paths of secrets written into the file itself
    # For the operator, logged once logging is set up: old spellings (accepted), readable secrets.
    warnings: tuple[str, ...] = ()
    # False when read leniently for a command that needs no secret: secrets may be missing.
    secrets_read: bool = True

    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, revealed, for the filters that redact them from output."""
        candidates = [
            self.http.token,
            self.servicetitan.app_key,
            self.servicetitan.client_secret,
            self.intacct.sender_password,
            self.intacct.user_password,
            self.intacct.client_secret,
            self.report.email.password if self.report.email else None,
        ]
        values = [s.reveal() for s in candidates if s] + list(self.database.passwords())
        return tuple(dict.fromkeys(values))

    def public_dict(self) -> dict[str, Any]:
        """The effective configuration in the file's layout, JSON-able; secrets `***`, durations seconds."""
        email = self.report.email
        return {
            "source": self.source,
            "database": {"dsn": self.database.masked_dsn(),
                         "connect_timeout": self.database.connect_timeout.total_seconds()},
            "state_dir": str(self.state_dir),
            "http": {"listen": self.http.listen, "token": _mask(self.http.token),
                     "allowed_hosts": list(self.http.allowed_hosts)},
            "servicetitan": _plain(self.servicetitan),
            "intacct": _plain(self.intacct),
            "settings": _plain(self.settings),
            "mapping": _plain(self.mapping),
            "sync": _plain(self.sync),
            "reconcile": _plain(self.reconcile),
            "report": {
                "send": self.report.send,
                "daily_at": self.report.daily_at.strftime("%H:%M") if self.report.daily_at else None,
                "timezone": self.report.timezone,
                "email": None
                if email is None
                else {
                    "to": list(email.to),
                    "from": email.sender,
                    "smtp_host": email.smtp_host,
                    "smtp_port": email.smtp_port,
                    "tls": email.tls,
                    "username": email.username,
                    "password": _mask(email.password),
                },
            },
            "logging": _plain(self.logging),
        }


def _mask(secret: Secret | None) -> str | None:
    return MASK if secret else None


def _plain(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields(cast(Any, obj)):
        value = getattr(obj, field.name)
        if isinstance(value, Secret):
            value = _mask(value)
        elif isinstance(value, timedelta):
            value = value.total_seconds()
        out[field.name] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML would keep the last silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_config(path: Path, env: Mapping[str, str] = os.environ, *, lenient: bool = False) -> Config:
    """Read, parse and validate the configuration file at `path` (`lenient`: see `Section`)."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, None, f"cannot read the file: {exc.strerror or exc}") from None
    except ValueError:  # a NUL in the path
        raise ConfigError(repr(source), None, "cannot read the file: the path contains a NUL character") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, None, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    config = load_config_text(text, source, env, lenient=lenient)
    warning = _readable_by_others(Path(path), config.inline_secrets)
    return replace(config, warnings=(*config.warnings, warning)) if warning else config


def _readable_by_others(path: Path, inline: tuple[str, ...]) -> str | None:
    """A warning when a file holding secrets can be read by its group or everyone (as ssh and libpq warn)."""
    if not inline:
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    readers = [who for who, bit in (("its group", stat.S_IRGRP), ("everyone", stat.S_IROTH)) if mode & bit]
    if not readers:
        return None
    return (f"{path} is readable by {' and '.join(readers)} (mode {stat.S_IMODE(mode):04o}) and holds secrets "
            f"({', '.join(inline)}): chmod 600 it, or move them to *_file credentials or ${{NAME}} variables")


def load_config_text(text: str, source: str, env: Mapping[str, str] = os.environ, *, lenient: bool = False
                     ) -> Config:
    """Parse and validate configuration YAML held in `text`; `source` names it in errors."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "invalid YAML"
        raise ConfigError(source, where, str(exc.problem or exc.context or "invalid YAML")) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, None, f"invalid YAML: {exc}") from None
    if data is None:
        raise ConfigError(source, None, "the file is empty (see config.yaml in the repository for an example)")
    return parse_config(data, source, env, lenient=lenient)


def parse_config(data: object, source: str, env: Mapping[str, str] = os.environ, *, lenient: bool = False
                 ) -> Config:
    """Validate already-parsed YAML `data` into a Config."""
    if not isinstance(data, dict):
        raise ConfigError(source, None, f"expected a mapping of sections at the top level, got {describe(data)}")
    return read_config(Section(source, env, "", data, TOP_KEYS, lenient=lenient))


def read_config(top: Section) -> Config:
    """Every section of the file through `top` (the loader's Section, or the schema's recorder)."""
    source = top.source
    for name in ("servicetitan", "intacct"):
        if not top.given(name):
            raise top.error(name, "required")
    config = Config(
        source=source,
        database=read_database(top),
        state_dir=Path(top.string("state_dir", "./state") or "./state"),
        http=read_http(top),
        servicetitan=read_servicetitan(top),
        intacct=read_intacct(top),
        settings=read_settings(top),
        mapping=read_mapping(top),
        sync=read_sync(top),
        reconcile=read_reconcile(top),
        report=read_report(top),
        logging=read_logging(top),
        warnings=tuple(top.notes),
        secrets_read=not top.lenient,
    )
    return replace(config, inline_secrets=tuple(top.inline))


def restart_needed(old: Config, new: Config, listening: str) -> list[str]:
    """The keys whose new value takes effect only at a restart (`listening`: the address bound now)."""
    return [name for name, a, b in (
        ("database.dsn", old.database.dsn, new.database.dsn),
        ("http.listen", listening, new.http.listen),
        ("servicetitan.tenant_id", old.servicetitan.tenant_id, new.servicetitan.tenant_id),
        ("state_dir", old.state_dir, new.state_dir),
        ("sync.workers", old.sync.workers, new.sync.workers),
        ("intacct.max_concurrent_requests", old.intacct.max_concurrent_requests,
         new.intacct.max_concurrent_requests),
    ) if a != b]
