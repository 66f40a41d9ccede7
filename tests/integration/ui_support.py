"""Shared by the queue page's integration tests: the daemon's HTTP application over the real store,
with a recording gate and reconciler, and helpers to make records and sign in."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from daemon import logs
from daemon.config import Config
from daemon.config.loading import load_config_text
from daemon.config.sections import HttpConfig
from daemon.metrics import Metrics
from daemon.store import Finished, RecordError, RecordKey, RecordUpsert, Store, Synced
from daemon.sync import ConnectionMonitor
from daemon.sync.gate import EnsureOutcome, EnsureResult, Verdict
from statemachine import FieldMapping, JobFacts, ProjectFacts, Settings, State, desired_for_job, desired_for_project

TOKEN = "ui-test-token-0123456789"
HOSTILE = "<script>alert(1)</script> \"q\" 'a' & \u202eevil"
OWNER = "test-owner"


def make_config(listen: str = "127.0.0.1:8080", token: str | None = TOKEN, timezone: str | None = None) -> Config:
    doc: dict[str, Any] = {
        "http": {"listen": listen, **({"token": token} if token else {})},
        "servicetitan": {"tenant_id": 1234567, "app_key": "ak-sekrit-1", "client_id": "cid",
                         "client_secret": "cs-sekrit-2"},
        "intacct": {"sender_id": "sid", "sender_password": "sp-sekrit-3", "company_id": "co", "user_id": "uid",
                    "user_password": "up-sekrit-4"},
    }
    if timezone:
        doc["report"] = {"timezone": timezone}
    return load_config_text(yaml.safe_dump(doc), "config.yaml", {})


@dataclass
class FakeGate:
    calls: list[list[RecordKey]] = field(default_factory=list)

    async def ensure(self, keys: Sequence[RecordKey], timeout: float) -> EnsureOutcome:
        self.calls.append(list(keys))
        return EnsureOutcome(Verdict.SYNCED, [EnsureResult(k, "synced", None, None) for k in keys])


@dataclass
class FakeReconciler:
    triggers: list[str] = field(default_factory=list)

    async def start_run(self, trigger: str) -> int:
        self.triggers.append(trigger)
        return 1

    async def latest(self) -> None:
        return None


@dataclass
class Services:
    """What the supervisor gives the HTTP layer, with a recording gate and reconciler."""

    store: Store
    cfg: Config
    gate: FakeGate = field(default_factory=FakeGate)
    reconciler: FakeReconciler = field(default_factory=FakeReconciler)
    metrics: Metrics = field(default_factory=Metrics)
    intacct_monitor: ConnectionMonitor = field(default_factory=lambda: ConnectionMonitor("intacct"))
    servicetitan_monitor: ConnectionMonitor = field(default_factory=lambda: ConnectionMonitor("servicetitan"))
    redactor: logs.Redactor = field(default_factory=lambda: logs.Redactor(["sp-sekrit-3"]))
    started: float = field(default_factory=time.monotonic)
    owner: str = "ui-test"

    def config(self) -> Config:
        return self.cfg

    @property
    def listener(self) -> HttpConfig:
        return self.cfg.http  # the daemon binds its first config's address

    def is_leader(self) -> bool:
        return True

    def rejected_rows(self) -> list[dict[str, Any]]:
        return []

    async def database_ok(self) -> bool:
        return True


Client = Callable[..., Awaitable[TestClient]]




def job(st_id: int, name: str | None = None, customer: str = "Acme", number: str | None = None) -> RecordUpsert:
    facts = JobFacts(st_id, number or str(st_id), None, 7, customer)
    return RecordUpsert("job", st_id, facts.number, name, 7, customer, None, True, None, None,
                        desired_for_job(facts, None, Settings(), FieldMapping()))


def project(st_id: int, name: str) -> RecordUpsert:
    facts = ProjectFacts(st_id, f"P{st_id}", name, 7, "Acme")
    return RecordUpsert("project", st_id, facts.number, name, 7, "Acme", None, True, None, None,
                        desired_for_project(facts, Settings(), FieldMapping()))


async def fail(store: Store, key: RecordKey, error: dict[str, Any] | None = None) -> None:
    claimed = await store.claim_batch(OWNER, 1, timedelta(seconds=60), only=[key])
    assert claimed
    await store.finish(OWNER, [Finished(key, State.FAILED, "refused by Intacct", claimed[0].desired_hash,
                                        error=RecordError.from_json(error or {
                                            "class": "permanent", "errorno": "BL01001973",
                                            "description2": "Customer 'C9' specified is not valid."}))],
                       {key: claimed[0].claim_id})


async def sync(store: Store, key: RecordKey) -> None:
    claimed = await store.claim_batch(OWNER, 1, timedelta(seconds=60), only=[key])
    assert claimed
    await store.mark_synced(OWNER, [Synced(key, claimed[0].desired_hash, claimed[0].desired, 1)],
                            {key: claimed[0].claim_id})


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF field in the page"
    return found[1]


async def sign_in(client: TestClient, token: str = TOKEN) -> web.ClientResponse:  # type: ignore[name-defined]
    page = await client.get("/signin")
    csrf = form_csrf(await page.text())
    return await client.post("/signin", data={"csrf": csrf, "token": token, "next": "/queue"},
                             allow_redirects=False)


def set_cookie(response: Any, name: str) -> dict[str, str | bool]:
    """The attributes of one Set-Cookie header."""
    for header in response.headers.getall("Set-Cookie", []):
        parsed = SimpleCookie()
        parsed.load(header)
        if name in parsed:
            morsel = parsed[name]
            lowered = header.lower()
            return {"value": morsel.value, "httponly": "httponly" in lowered, "secure": "secure" in lowered,
                    "samesite": morsel["samesite"]}
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.getall('Set-Cookie', [])}")
