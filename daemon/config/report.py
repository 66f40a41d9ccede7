"""The `reconcile:` and `report:` sections: when reconciliations run, and how their report is mailed."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, fields
from datetime import time, timedelta
from typing import Literal, cast

from adapters.transport import is_loopback
from daemon.config.reader import Section, describe
from daemon.config.secret import Secret

SEND_WHEN = ("on-change", "on-exceptions", "always")
TLS_MODES = ("starttls", "implicit", "none")
_DAILY_AT = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class ReconcileConfig:
    interval: timedelta
    scope: Literal["activated", "all"]
    repair: bool


@dataclass(frozen=True)
class EmailConfig:
    to: tuple[str, ...]
    sender: str  # `from` in the file: a Python keyword
    smtp_host: str
    smtp_port: int
    tls: Literal["starttls", "implicit", "none"]
    username: str | None
    password: Secret | None


@dataclass(frozen=True)
class ReportConfig:
    send: Literal["on-change", "on-exceptions", "always"]
    email: EmailConfig | None
    daily_at: time | None = None  # a digest every day at this local time (report.timezone)
    timezone: str = "UTC"  # an IANA name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)



def read_reconcile(top: Section) -> ReconcileConfig:
    """`reconcile:`."""
    section = top.section("reconcile", [f.name for f in fields(ReconcileConfig)])
    scope = section.choice("scope", "activated", ("activated", "all"))
    return ReconcileConfig(
        interval=section.duration("interval", timedelta(hours=1)),
        scope=cast(Literal["activated", "all"], scope),
        repair=section.boolean("repair", True),
    )


def read_report(top: Section) -> ReportConfig:
    """`report:`; without `email:` reports are stored and served but not mailed."""
    section = top.section("report", ["send", "daily_at", "timezone", "email"])
    send = section.choice("send", "on-change", SEND_WHEN)
    email = None
    if section.given("email"):
        keys = ["to", "from", "smtp_host", "smtp_port", "tls", "starttls", "username"]
        email = _email(section.section("email", keys, secrets=["password"]))
    return ReportConfig(send=cast(Literal["on-change", "on-exceptions", "always"], send), email=email,
                        daily_at=_daily_at(section), timezone=_timezone(section))


def _daily_at(section: Section) -> time | None:
    section.shape("daily_at", {"anyOf": [{"type": "string", "pattern": rf"^\s*(?:{_DAILY_AT.pattern}|off)\s*$|\$\{{"},
                                         {"const": False}, {"type": "null"}],
                               "description": 'a time like "07:00" (quoted), or off'})
    raw = section.data.get("daily_at")
    if raw is False:  # `off`, which YAML 1.1 reads as false
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        # YAML 1.1 reads an unquoted 7:30 as the base-60 number 450.
        raise section.error("daily_at", f'expected a time like "07:00" (quote it), got {raw}')
    text = section.string("daily_at", None)
    if text is None:
        return None
    if text is not None and text.strip().lower() == "off":
        return None
    match = _DAILY_AT.fullmatch((text or "").strip())
    if match is None:
        raise section.error("daily_at", f'expected a time like "07:00" (24-hour HH:MM), got {describe(text)}')
    return time(int(match[1]), int(match[2]))


def _timezone(section: Section) -> str:
    name = section.string("timezone", "UTC")
    assert name is not None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise section.error("timezone", f"expected an IANA time zone like Europe/Paris or America/New_York, "
                            f"got {describe(name)}") from None
    return name


def _tls(section: Section) -> Literal["starttls", "implicit", "none"]:
    if section.old_spelling("starttls", "tls"):
        old = section.boolean("starttls", False)
        new = "starttls" if old else "none"
        section.warn("starttls", f"is deprecated: write {section.key('tls')}: {new} instead")
        return cast(Literal["starttls", "implicit", "none"], new)
    return cast(Literal["starttls", "implicit", "none"], section.choice("tls", "none", TLS_MODES))


def _email(section: Section) -> EmailConfig:
    to = section.strings("to")
    sender = section.required_string("from")
    for key, address in [*((f"to[{i}]", a) for i, a in enumerate(to)), ("from", sender)]:
        if "@" not in address:
            raise section.error(key, f"expected an email address, got {describe(address)}")
    username = section.string("username", None) or None
    password = section.secret("password", required=False)
    if (username is None) != (password is None) and not section.lenient:
        missing, given = ("password", "username") if username else ("username", "password")
        raise section.error(missing, f"required with {section.key(given)}{section.unset_hint(missing)}")
    smtp_host = section.string("smtp_host", "127.0.0.1")
    assert smtp_host is not None
    tls = _tls(section)
    if username is not None and tls == "none" and not is_loopback(smtp_host):
        raise section.error("tls", f"must be starttls or implicit: {section.key('username')} is set and "
                            f"{section.key('smtp_host')} ({smtp_host}) is not loopback, and credentials are "
                            "never sent without TLS")
    return EmailConfig(
        to=to,
        sender=sender,
        smtp_host=smtp_host,
        smtp_port=section.integer("smtp_port", 465 if tls == "implicit" else 25, low=1, high=65535),
        tls=tls,
        username=username,
        password=password,
    )
