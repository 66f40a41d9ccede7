"""Everything the simulated company holds in memory: projects, customers, sessions, faults, counters."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from simulators.intacct.faults import ConcurrencyLimiter, Faults
from simulators.intacct.projects import ProjectStore

CREDENTIAL_KEYS = ("sender_id", "sender_password", "company_id", "user_id", "user_password")


@dataclass(frozen=True)
class IntacctSimOptions:
    """Start-up configuration; faults start from these values and ``reset`` returns to them."""

    sender_id: str | None = None
    sender_password: str | None = None
    company_id: str | None = None
    user_id: str | None = None
    user_password: str | None = None
    max_concurrent: int | None = 2
    concurrency_wait: float = 30.0
    session_ttl: float = 3600.0
    session_max_age: float | None = None
    latency: float = 0.0
    latency_per_function: float = 0.0
    seed_customers: tuple[str, ...] = ()
    seed_projects: tuple[Mapping[str, str | None], ...] = ()
    seed: int = 0
    session_endpoint: str | None = None  # the <endpoint> to announce; None: the gateway's own URL


@dataclass(frozen=True)
class SimCredentials:
    """The enforced credentials; a None field accepts any non-empty value."""

    sender_id: str | None = None
    sender_password: str | None = None
    company_id: str | None = None
    user_id: str | None = None
    user_password: str | None = None

    def sender_ok(self, sender_id: str, password: str) -> bool:
        """Whether the control block's sender id and password are accepted."""
        return _matches(self.sender_id, sender_id) and _matches(self.sender_password, password)

    def user_ok(self, company_id: str, user_id: str, password: str) -> bool:
        """Whether a login block is accepted."""
        return (
            _matches(self.company_id, company_id)
            and _matches(self.user_id, user_id)
            and _matches(self.user_password, password)
        )

    def public(self) -> dict[str, object]:
        """Which credentials are enforced, without their values."""
        return {key: getattr(self, key) is not None for key in CREDENTIAL_KEYS}


def _matches(expected: str | None, given: str) -> bool:
    return bool(given) if expected is None else given == expected


@dataclass
class Session:
    """An API session: sliding expiry from ``last_used``, absolute from ``created``."""

    session_id: str
    userid: str
    companyid: str
    locationid: str
    created: float
    last_used: float


@dataclass
class Stats:
    """Counters served by ``GET /_sim/stats``."""

    requests: int = 0
    session_requests: int = 0
    functions: Counter[str] = field(default_factory=Counter)
    creates_applied: int = 0
    updates_applied: int = 0
    duplicate_create_attempts: int = 0
    refused_functions: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    auth_failures: int = 0
    control_failures: int = 0

    def as_dict(self) -> dict[str, object]:
        """The counters as JSON-ready values."""
        return {
            "requests": self.requests,
            "session_requests": self.session_requests,
            "functions": {kind: self.functions[kind] for kind in ("create", "update", "readByName", "query")}
            | dict(self.functions),
            "creates_applied": self.creates_applied,
            "updates_applied": self.updates_applied,
            "duplicate_create_attempts": self.duplicate_create_attempts,
            "refused_functions": self.refused_functions,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "faults": dict(self.faults),
            "auth_failures": self.auth_failures,
            "control_failures": self.control_failures,
        }


def format_timestamp(epoch: float) -> str:
    """An Intacct-style timestamp (seconds, with offset)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class SimState:
    """The simulated Intacct company."""

    def __init__(self, options: IntacctSimOptions | None = None) -> None:
        self.options = options or IntacctSimOptions()
        self.projects = ProjectStore()
        self.customers: dict[str, str] = {}
        self.sessions: dict[str, Session] = {}
        self.limiter = ConcurrencyLimiter()
        self.stats = Stats()
        self.faults = self.initial_faults()
        self.credentials = self.initial_credentials()
        self.rng = random.Random(self.options.seed)
        self.session_endpoint = self.options.session_endpoint
        self.seed()

    def initial_faults(self) -> Faults:
        """The faults the options start with."""
        o = self.options
        return Faults(
            latency=o.latency,
            latency_per_function=o.latency_per_function,
            max_concurrent=o.max_concurrent,
            concurrency_wait=o.concurrency_wait,
            session_ttl=o.session_ttl,
            session_max_age=o.session_max_age,
        )

    def initial_credentials(self) -> SimCredentials:
        """The credentials the options enforce."""
        return SimCredentials(**{key: getattr(self.options, key) for key in CREDENTIAL_KEYS})

    def seed(self) -> None:
        """Load the options' customers and projects."""
        for customer_id in self.options.seed_customers:
            self.customers.setdefault(customer_id, customer_id)
        for row in self.options.seed_projects:
            fields = {k: v for k, v in row.items() if v is not None and k != "RECORDNO"}
            fields.setdefault("PROJECTCATEGORY", "Contract")
            self.projects.create(fields, self.customers)

    def reset(self) -> None:
        """Back to the start-up state: data, sessions, faults, credentials, counters and random seed."""
        self.projects.clear()
        self.customers.clear()
        self.sessions.clear()
        self.faults = self.initial_faults()
        self.credentials = self.initial_credentials()
        in_flight = self.stats.in_flight
        self.stats = Stats(in_flight=in_flight)
        self.rng = random.Random(self.options.seed)
        self.session_endpoint = self.options.session_endpoint
        self.seed()

    def chance(self, rate: float) -> bool:
        """A seeded coin toss; a zero rate draws nothing so that other faults keep their sequence."""
        return rate > 0 and self.rng.random() < rate

    def enter(self) -> None:
        """Count a request in flight."""
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)

    def leave(self) -> None:
        """Count a request done."""
        self.stats.in_flight -= 1

    # -- sessions ------------------------------------------------------------------------------

    def open_session(self, userid: str, companyid: str, locationid: str) -> Session:
        """A new session for a user who just logged in."""
        now = time.time()
        session = Session(uuid.uuid4().hex + "..", userid, companyid, locationid, now, now)
        self.sessions[session.session_id] = session
        return session

    def use_session(self, session_id: str) -> Session | None:
        """The session, its sliding expiry pushed back; None when unknown or expired."""
        session = self.sessions.get(session_id)
        if session is None:
            return None
        now = time.time()
        max_age = self.faults.session_max_age
        if now >= session.last_used + self.faults.session_ttl or (
            max_age is not None and now >= session.created + max_age
        ):
            del self.sessions[session_id]
            self.stats.faults["session_expired"] += 1
            return None
        session.last_used = now
        return session

    def session_timeout(self, session: Session) -> str:
        """The sliding expiry Intacct announces in ``<sessiontimeout>``."""
        return format_timestamp(session.last_used + self.faults.session_ttl)

    def expire_sessions(self) -> int:
        """Forget every session (the next request with one gets "Invalid session")."""
        count = len(self.sessions)
        self.sessions.clear()
        return count
