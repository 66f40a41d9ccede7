"""The infrastructure sections of the configuration file: one frozen dataclass each, and its reader."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Literal, cast
from urllib.parse import urlsplit

from adapters.transport import is_loopback
from daemon.config.dsn import dsn_passwords, mask_dsn
from daemon.config.reader import REQUIRED, Section, describe
from daemon.config.secret import Secret

# Each poll reads two export feeds (projects, then jobs): two requests, so 2.2 s keeps an idle daemon at
# under one request a second to ServiceTitan (a token renewal included) while a change waits 1.1 s for
# its poll on average (bench/latency.py).
DEFAULT_POLL_INTERVAL = timedelta(seconds=2.2)

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/st_intacct_sync"
_LEVELS = ("debug", "info", "warning", "error", "critical")
_LISTEN = re.compile(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port6>\d+)|(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)")


@dataclass(frozen=True, repr=False)
class DatabaseConfig:
    """Where the state lives: a PostgreSQL URL, or `embedded` for a private server under state_dir."""

    dsn: str
    # How long a command waits for the database before it gives up (the daemon waits for ever).
    connect_timeout: timedelta = field(default=timedelta(seconds=10))

    @property
    def embedded(self) -> bool:
        return self.dsn == "embedded"

    def passwords(self) -> tuple[str, ...]:
        """Passwords written into the DSN (user info or `?password=`), as written and decoded."""
        return () if self.embedded else dsn_passwords(self.dsn)

    def masked_dsn(self) -> str:
        """The DSN with its passwords replaced by `***`."""
        return mask_dsn(self.dsn)

    def __repr__(self) -> str:
        return f"DatabaseConfig(dsn={self.masked_dsn()!r})"


@dataclass(frozen=True)
class HttpConfig:
    """The status/API server: where it listens, its bearer token and the extra Host names it answers."""

    host: str
    port: int
    token: Secret | None
    allowed_hosts: tuple[str, ...] = ()  # lower case; `name` (any port) or `name:port`

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


@dataclass(frozen=True)
class ServiceTitanConfig:
    tenant_id: int
    api_base_url: str
    auth_url: str
    app_key: Secret
    client_id: str
    client_secret: Secret
    poll_interval: timedelta
    include_recent_changes: bool


@dataclass(frozen=True)
class IntacctConfig:
    api: str  # "xml" (the XML gateway) or "rest" (the REST API); only that API's credentials are required
    endpoint_url: str
    sender_id: str | None
    sender_password: Secret | None
    company_id: str | None
    user_id: str | None
    user_password: Secret | None
    entity_id: str | None
    rest_url: str
    client_id: str | None
    client_secret: Secret | None
    web_services_user: str | None
    max_concurrent_requests: int
    max_functions_per_request: int
    request_timeout: timedelta
    probe_interval: timedelta
    session_max_age: timedelta  # XML: a session whose login announced no <sessiontimeout> lives this long


@dataclass(frozen=True)
class SyncConfig:
    workers: int
    max_attempts: int
    backoff_initial: timedelta
    backoff_max: timedelta
    lease: timedelta


@dataclass(frozen=True)
class LoggingConfig:
    format: Literal["auto", "json", "console"]
    level: str


MIN_TOKEN_LENGTH = 16  # off loopback the token is all that stands between the network and POST /v1/reconcile
_HOST_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?::\d{1,5})?"
                        r"|\[[0-9a-f:.]+\](?::\d{1,5})?")


def token_problem(host: str, token: Secret | None) -> str | None:
    """Why `token` cannot guard a listener on `host`, or None: the rule of the file and of every reload."""
    if is_loopback(host):
        return None
    if token is None:
        return "required when http.listen is not on loopback"
    if len(token.reveal()) < MIN_TOKEN_LENGTH:
        return (f"must be at least {MIN_TOKEN_LENGTH} characters when http.listen is not on loopback")
    return None


def read_database(top: Section) -> DatabaseConfig:
    """`database:`; the DSN must be a PostgreSQL URL or `embedded`."""
    section = top.section("database", ["dsn", "connect_timeout"])
    dsn = section.string("dsn", DEFAULT_DSN)
    assert dsn is not None
    connect_timeout = section.duration("connect_timeout", timedelta(seconds=10))
    if dsn == "embedded":
        return DatabaseConfig(dsn, connect_timeout)
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    # The DSN may hold a password: describe the problem, never quote the value.
    if parts is None or parts.scheme not in ("postgresql", "postgres"):
        raise section.error("dsn", "expected a postgresql://user@host:port/database URL or embedded")
    return DatabaseConfig(dsn, connect_timeout)


def read_http(top: Section) -> HttpConfig:
    """`http:`; a token is required unless the server listens on loopback only."""
    section = top.section("http", ["listen", "allowed_hosts"], secrets=["token"])
    listen = section.string("listen", "127.0.0.1:8080")
    assert listen is not None
    match = _LISTEN.fullmatch(listen.strip())
    host = (match["v6"] or match["host"]) if match else ""
    try:
        if match and match["v6"]:
            ipaddress.IPv6Address(host)
        elif host.replace(".", "").isdigit():
            ipaddress.IPv4Address(host)
    except ValueError:
        match = None
    if match is None:
        raise section.error("listen", f"expected HOST:PORT like 127.0.0.1:8080 or [::1]:8080, got {describe(listen)}")
    port = int(match["port6"] or match["port"])
    if port > 65535:
        raise section.error("listen", f"port must be between 0 and 65535, got {port}")
    token = section.secret("token", required=False)
    problem = token_problem(host, token)
    if problem is not None and not (section.lenient and token is None):
        got = f"; got {len(token.reveal())}" if token is not None else section.unset_hint("token")
        raise section.error("token", f"{problem} ({listen}){got}")
    return HttpConfig(host=host, port=port, token=token, allowed_hosts=_allowed_hosts(section))


def _allowed_hosts(section: Section) -> tuple[str, ...]:
    """`http.allowed_hosts`: Host header values answered besides the listen address and loopback names."""
    section.shape("allowed_hosts", {"type": ["array", "string", "null"],
                                    # Names are compared lowercased; JSON Schema patterns have no flags.
                                    "items": {"type": "string", "pattern": "^(?:{})$|\\$\\{{".format(
                                        _HOST_NAME.pattern.replace("a-z", "A-Za-z").replace("a-f", "A-Fa-f"))},
                                    "description": "Host header values (sync.example.com or sync.example.com:8443)"})
    raw = section.data.get("allowed_hosts")
    if raw is None or raw == []:
        return ()
    hosts = tuple(h.lower() for h in section.strings("allowed_hosts"))
    for index, host in enumerate(hosts):
        if not _HOST_NAME.fullmatch(host):
            raise section.error(f"allowed_hosts[{index}]",
                                f"expected a host name as clients send it (sync.example.com or "
                                f"sync.example.com:8443), got {describe(host)}")
    return hosts


def _url(section: Section, key: str, default: str) -> str:
    url = section.string(key, default)
    assert url is not None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise section.error(key, f"expected an http(s):// URL, got {describe(url)}")
    # The credentials and every record travel over it: in clear only to this machine (the simulators).
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        raise section.error(key, f"must be an https:// URL (plain http only to a loopback address), "
                                 f"got {describe(url)}")
    return url.rstrip("/")


def _secret(section: Section, key: str) -> Secret:
    value = section.secret(key, required=True)
    if value is None:  # a lenient read: the secret is not needed by the command reading the file
        return Secret("")
    return value


def read_servicetitan(top: Section) -> ServiceTitanConfig:
    """`servicetitan:`; tenant and credentials are required."""
    keys = [f.name for f in fields(ServiceTitanConfig)]
    st = top.section("servicetitan", keys, secrets=["app_key", "client_secret"])
    return ServiceTitanConfig(
        tenant_id=st.integer("tenant_id", REQUIRED, low=1),
        api_base_url=_url(st, "api_base_url", "https://api.servicetitan.io"),
        auth_url=_url(st, "auth_url", "https://auth.servicetitan.io/connect/token"),
        app_key=_secret(st, "app_key"),
        client_id=st.required_string("client_id"),
        client_secret=_secret(st, "client_secret"),
        poll_interval=st.duration("poll_interval", DEFAULT_POLL_INTERVAL),
        include_recent_changes=st.boolean("include_recent_changes", True),
    )


INTACCT_APIS = ("xml", "rest")


def read_intacct(top: Section) -> IntacctConfig:
    """`intacct:`; the credentials of the API in use are required (sender and user, or OAuth2 client)."""
    keys = [f.name for f in fields(IntacctConfig)]
    ia = top.section("intacct", keys, secrets=["sender_password", "user_password", "client_secret"])
    api = ia.string("api", "xml")
    if api not in INTACCT_APIS:
        raise ia.error("api", f"must be one of {', '.join(INTACCT_APIS)}, got {api!r}")
    xml, rest = api == "xml", api == "rest"
    client_id = ia.required_string("client_id") if rest else ia.string("client_id", None, ignored=True)
    client_secret = ia.secret("client_secret", required=rest)
    user = ia.required_string("web_services_user") if rest else ia.string("web_services_user", None, ignored=True)
    if user is not None and "@" not in user.split("|", 1)[0]:
        raise ia.error("web_services_user", "must be user@company (optionally user@company|entity)")
    return IntacctConfig(
        api=api,
        endpoint_url=_url(ia, "endpoint_url", "https://api.intacct.com/ia/xml/xmlgw.phtml"),
        sender_id=ia.required_string("sender_id") if xml else ia.string("sender_id", None, ignored=True),
        sender_password=ia.secret("sender_password", required=xml),
        company_id=ia.required_string("company_id") if xml else ia.string("company_id", None, ignored=True),
        user_id=ia.required_string("user_id") if xml else ia.string("user_id", None, ignored=True),
        user_password=ia.secret("user_password", required=xml),
        entity_id=ia.string("entity_id", None) or None,
        rest_url=_url(ia, "rest_url", "https://api.intacct.com/ia/api/v1"),
        client_id=client_id,
        client_secret=client_secret,
        web_services_user=user,
        # Intacct's per-company limit is 2 by default; more only helps where it has been raised.
        max_concurrent_requests=ia.integer("max_concurrent_requests", 2, low=1, high=100),
        # Records per request: XML functions (no documented cap; 500 keeps one response parseable), or
        # the REST API's batch, which Sage caps at 500.
        max_functions_per_request=ia.integer("max_functions_per_request", 50, low=1, high=500),
        request_timeout=ia.duration("request_timeout", timedelta(seconds=60)),
        probe_interval=ia.duration("probe_interval", timedelta(seconds=30)),
        # Intacct ends sessions in silence; one that announced no expiry is renewed after this.
        session_max_age=ia.duration("session_max_age", timedelta(minutes=30)),
    )


def read_sync(top: Section) -> SyncConfig:
    """`sync:`; the backoff range must not be inverted."""
    section = top.section("sync", [f.name for f in fields(SyncConfig)])
    sync = SyncConfig(
        workers=section.integer("workers", 4, low=1, high=1000),
        max_attempts=section.integer("max_attempts", 10, low=1, high=1000),
        backoff_initial=section.duration("backoff_initial", timedelta(seconds=2)),
        backoff_max=section.duration("backoff_max", timedelta(minutes=10)),
        lease=section.duration("lease", timedelta(seconds=60)),
    )
    if sync.backoff_initial > sync.backoff_max:
        initial, most = sync.backoff_initial.total_seconds(), sync.backoff_max.total_seconds()
        raise section.error(
            "backoff_initial", f"must not exceed {section.key('backoff_max')} ({initial:g}s > {most:g}s)"
        )
    return sync


def read_logging(top: Section) -> LoggingConfig:
    """`logging:`; the level is normalised to lower case."""
    section = top.section("logging", ["format", "level"])
    fmt = section.choice("format", "auto", ("auto", "json", "console"))
    level = section.string("level", "info")
    assert level is not None
    level = {"warn": "warning"}.get(level.lower(), level.lower())
    if level not in _LEVELS:
        raise section.error("level", f"expected one of {', '.join(_LEVELS)}, got {describe(level)}")
    return LoggingConfig(format=cast(Literal["auto", "json", "console"], fmt), level=level)
