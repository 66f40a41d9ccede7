"""The queue page's rules, in process against the real PostgreSQL: escaping, headers, sign-in, CSRF,
who may see and do what from where, the queue's filters, search and paging, and the run's CSV."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from daemon import logs
from daemon.config import Config
from daemon.config.loading import load_config_text
from daemon.config.sections import HttpConfig
from daemon.http import create_app
from daemon.metrics import Metrics
from daemon.reconcile.report import csv_name, render_csv
from daemon.store import Category, Finding, Finished, RecordKey, RecordUpsert, Store, Synced
from daemon.sync import ConnectionMonitor
from daemon.sync.gate import EnsureOutcome, EnsureResult
from statemachine import JobFacts, Mapping, ProjectFacts, Settings, State, desired_for_job, desired_for_project

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
        return EnsureOutcome(200, [EnsureResult(k, "synced", None, None) for k in keys])


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


@pytest.fixture
async def pages(store: Store, aiohttp_client: Client) -> Callable[..., Awaitable[tuple[TestClient, Services]]]:
    async def make(config: Config | None = None) -> tuple[TestClient, Services]:
        services = Services(store, config or make_config())
        client = await aiohttp_client(create_app(services))  # type: ignore[arg-type]
        return client, services

    return make


def job(st_id: int, name: str | None = None, customer: str = "Acme", number: str | None = None) -> RecordUpsert:
    facts = JobFacts(st_id, number or str(st_id), None, 7, customer)
    return RecordUpsert("job", st_id, facts.number, name, 7, customer, None, True, None, None,
                        desired_for_job(facts, None, Settings(), Mapping()))


def project(st_id: int, name: str) -> RecordUpsert:
    facts = ProjectFacts(st_id, f"P{st_id}", name, 7, "Acme")
    return RecordUpsert("project", st_id, facts.number, name, 7, "Acme", None, True, None, None,
                        desired_for_project(facts, Settings(), Mapping()))


async def fail(store: Store, key: RecordKey, error: dict[str, Any] | None = None) -> None:
    claimed = await store.claim_batch(OWNER, 1, timedelta(seconds=60), only=[key])
    assert claimed
    await store.finish(OWNER, [Finished(key, State.FAILED, "refused by Intacct", claimed[0].desired_hash,
                                        error=error or {"class": "permanent", "errorno": "BL01001973",
                                                        "description2": "Customer 'C9' specified is not valid."})],
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


# ---- what every page is made of ------------------------------------------------------------------


async def test_every_value_is_escaped(pages: Any, store: Store) -> None:
    client, _ = await pages()
    await store.upsert([job(11, HOSTILE, customer=HOSTILE, number="11<b>")])
    await fail(store, RecordKey("job", 11), {"class": "permanent", "errorno": "<i>E1</i>",
                                              "description2": "bad \"<img src=x onerror=alert(1)>\""})
    for path in ("/", "/queue", "/queue?state=failed", "/queue?q=alert", "/queue/job/11"):
        resp = await client.get(path)
        html = await resp.text()
        assert resp.status == 200, path
        assert "<script>alert" not in html and "<img src=x" not in html and "<i>E1" not in html, path
        assert "<b>" not in html, path
    html = await (await client.get("/queue/job/11")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<bdi>" in html  # right-to-left text cannot reorder the text around it


async def test_pages_forbid_anything_external(pages: Any, store: Store) -> None:
    client, _ = await pages()
    await store.upsert([job(12, "Plain")])
    for path in ("/", "/queue", "/queue/job/12", "/reconciliation", "/signin"):
        resp = await client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        html = await resp.text()
        links = re.findall(r'(?:src|href|action)="([^"]*)"', html)
        assert links and all(u.startswith(("/", "#", "?")) for u in links), (path, links)
        assert " style=" not in html and "<style" not in html  # styles come from /assets only
        assert html.count("<script") <= 1 and ("<script" not in html or 'src="/assets/refresh.js' in html)


async def test_pages_answer_html_errors(pages: Any) -> None:
    client, _ = await pages()
    for path, status in (("/queue/job/999", 404), ("/queue/task/1", 404), ("/queue?state=nope", 400),
                         ("/queue?after=%%%", 400), ("/reconciliation/77", 404),
                         ("/queue/job/99999999999999999999", 404)):
        resp = await client.get(path)
        assert resp.status == status, path
        assert resp.content_type == "text/html" and "Content-Security-Policy" in resp.headers


# ---- sign-in, sessions and CSRF -------------------------------------------------------------------


async def test_sign_in_sets_a_strict_httponly_cookie(pages: Any) -> None:
    client, _ = await pages()
    resp = await sign_in(client)
    assert resp.status == 303 and resp.headers["Location"] == "/queue"
    cookie = set_cookie(resp, "sis_session")
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]  # loopback
    html = await (await client.get("/queue")).text()
    assert "Sign out" in html


async def test_off_loopback_the_cookie_is_secure_and_reading_needs_a_session(pages: Any) -> None:
    client, _ = await pages(make_config(listen="0.0.0.0:8080"))
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/signin?next=/")
    assert (await client.get("/queue/job/1", allow_redirects=False)).status == 303
    assert (await client.get("/v1/records")).status == 401  # the JSON API keeps its bearer rule
    # Secure cookies: a client speaking plain HTTP (as here) must send them back by hand.
    form_page = await client.get("/signin")
    visitor = set_cookie(form_page, "sis_visitor")
    assert visitor["secure"] and visitor["httponly"] and visitor["samesite"] == "Strict"
    signed = await client.post("/signin", data={"csrf": form_csrf(await form_page.text()), "token": TOKEN,
                                                "next": "/"},
                               headers={"Cookie": f"sis_visitor={visitor['value']}"}, allow_redirects=False)
    cookie = set_cookie(signed, "sis_session")
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    resp = await client.get("/", headers={"Cookie": f"sis_session={cookie['value']}"}, allow_redirects=False)
    assert resp.status == 200 and "Sign out" in await resp.text()
    forged = str(cookie["value"])[:-1] + ("0" if str(cookie["value"])[-1] != "0" else "1")
    resp = await client.get("/", headers={"Cookie": f"sis_session={forged}"}, allow_redirects=False)
    assert resp.status == 303


async def test_a_wrong_token_signs_nobody_in(pages: Any) -> None:
    client, _ = await pages()
    resp = await sign_in(client, "wrong-token-0123456789")
    assert resp.status == 401
    assert "That is not the token" in await resp.text()
    assert not any("sis_session" in h for h in resp.headers.getall("Set-Cookie", []))


async def test_actions_need_a_session_and_the_csrf_token(pages: Any, store: Store) -> None:
    client, _ = await pages()
    await store.upsert([job(21, "Refused one")])
    await fail(store, RecordKey("job", 21))
    html = await (await client.get("/queue/job/21")).text()
    assert "Retry</button>" not in html  # no session: no action shown
    visitor_csrf = form_csrf(await (await client.get("/signin")).text())
    resp = await client.post("/queue/job/21/retry", data={"csrf": visitor_csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/signin")
    assert (await store.get(RecordKey("job", 21))).state is State.FAILED  # type: ignore[union-attr]

    await sign_in(client)
    html = await (await client.get("/queue/job/21")).text()
    assert "Retry</button>" in html
    csrf = form_csrf(html)
    for data in ({}, {"csrf": "0" * 64}, {"csrf": visitor_csrf}):
        resp = await client.post("/queue/job/21/retry", data=data, allow_redirects=False)
        assert resp.status == 403, data
    resp = await client.post("/queue/job/21/retry", json={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 415
    assert (await store.get(RecordKey("job", 21))).state is State.FAILED  # type: ignore[union-attr]

    resp = await client.post("/queue/job/21/retry", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/queue/job/21?done=retried"
    record = await store.get(RecordKey("job", 21))
    assert record is not None and record.state is State.PENDING
    history = await store.history(RecordKey("job", 21))
    assert history[0].reason == "operator retry (queue page)"


async def test_sync_now_and_reconcile_go_through_the_daemon(pages: Any, store: Store) -> None:
    client, services = await pages()
    await store.upsert([job(31, "Waiting one")])
    await sign_in(client)
    csrf = form_csrf(await (await client.get("/queue/job/31")).text())
    resp = await client.post("/queue/job/31/sync", data={"csrf": csrf}, allow_redirects=False)
    assert resp.headers["Location"] == "/queue/job/31?done=sync-done"
    assert services.gate.calls == [[RecordKey("job", 31)]]
    resp = await client.post("/reconciliation", data={"csrf": csrf}, allow_redirects=False)
    assert resp.headers["Location"] == "/reconciliation?done=reconcile-started"
    assert services.reconciler.triggers == ["http"]


async def test_without_a_token_loopback_actions_are_open_but_still_need_csrf(pages: Any, store: Store) -> None:
    client, services = await pages(make_config(token=None))
    await store.upsert([job(41, "x")])
    html = await (await client.get("/queue/job/41")).text()
    assert "Sync now</button>" in html and "Sign in" not in html
    assert (await client.post("/queue/job/41/sync", data={}, allow_redirects=False)).status == 403
    resp = await client.post("/queue/job/41/sync", data={"csrf": form_csrf(html)}, allow_redirects=False)
    assert resp.status == 303 and services.gate.calls == [[RecordKey("job", 41)]]


async def test_sign_in_only_sends_people_to_pages_of_this_daemon(pages: Any) -> None:
    client, _ = await pages()
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        client.session.cookie_jar.clear()
        csrf = form_csrf(await (await client.get("/signin")).text())
        resp = await client.post("/signin", data={"csrf": csrf, "token": TOKEN, "next": target},
                                 allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/", target


# ---- the queue: filters, search, paging -----------------------------------------------------------


async def test_queue_filters_searches_and_pages_through_everything(pages: Any, store: Store) -> None:
    client, _ = await pages()
    names = ["Smith & Sons", "Jones Plumbing", "García Heating", "Smithfield Farm"]
    await store.upsert([job(1000 + i, names[i % 4], number=str(24000 + i)) for i in range(60)]
                       + [project(5000 + i, f"Project {names[i % 4]}") for i in range(10)])
    for i in range(0, 60, 10):
        await fail(store, RecordKey("job", 1000 + i))
    await sync(store, RecordKey("project", 5001))

    async def rows(query: str) -> list[str]:
        html = await (await client.get("/queue" + query)).text()
        return re.findall(r'<a href="/queue/(job|project)/(\d+)">', html)

    failed = await rows("?state=failed")
    assert sorted(int(i) for _, i in failed) == [1000 + i for i in range(0, 60, 10)]
    assert await rows("?state=synced") == [("project", "5001")]
    assert {k for k, _ in await rows("?kind=project")} == {"project"}
    smith = await rows("?q=smith")  # word prefixes: Smith & Sons and Smithfield
    assert len(smith) == 30 + 5
    assert len(await rows("?q=Smith+%26+Sons")) == 15 + 3
    assert await rows("?q=24007") == [("job", "1007")]
    assert len(await rows("?q=2400")) == 10  # 24000..24009
    assert len(await rows("?q=garc%C3%ADa&kind=job")) == 15
    assert await rows("?q=%3C%3E%22") == []  # no words at all: nothing matches, nothing breaks

    seen: list[tuple[str, str]] = []
    url = "/queue"
    pages_read = 0
    while url:
        html = await (await client.get(url)).text()
        seen += re.findall(r'<a href="/queue/(job|project)/(\d+)">', html)
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found[1].replace("&amp;", "&") if found else ""
        pages_read += 1
    assert pages_read == 2 and len(seen) == 70 and len(set(seen)) == 70


async def test_record_page_shows_fields_history_and_the_parent(pages: Any, store: Store) -> None:
    client, _ = await pages()
    parent = project(600, "Riverside Office")
    facts = JobFacts(601, "24601", 600, 7, "Acme")
    child = RecordUpsert("job", 601, "24601", None, 7, "Acme", 600, True, None, None,
                         desired_for_job(facts, ProjectFacts(600, "P600", "Riverside Office", 7, "Acme"),
                                         Settings(), Mapping()))
    await store.upsert([parent, child])
    await fail(store, RecordKey("project", 600))
    html = await (await client.get("/queue/job/601")).text()
    assert 'href="/queue/project/600"' in html and "Riverside Office" in html
    assert "BL01001973" in html  # the parent's own error, in Intacct's words
    assert "Intacct refused the parent, so this job cannot go to Intacct before it" in html
    await store.retry_failed([RecordKey("project", 600)])
    html = await (await client.get("/queue/job/601")).text()
    assert "This job waits until its parent is in Intacct." in html and "Intacct refused the parent" not in html
    assert html.count("new in ServiceTitan") == 1


# ---- reconciliation runs and their CSV -------------------------------------------------------------


async def test_run_csv_is_the_report_attachment(pages: Any, store: Store) -> None:
    client, _ = await pages()
    run = await store.start_reconcile_run("http", "activated", True, None)
    findings = [
        Finding(Category.MISSING, "job", 5, "24005", "=HYPERLINK(\"x\")", "J-24005", None, "not in Intacct",
                "queued", False, datetime(2026, 11, 1, tzinfo=UTC)),
        Finding(Category.ORPHAN, None, None, None, None, "J-999", "Old <b>", "unknown to ServiceTitan",
                "reported", True, datetime(2026, 11, 2, tzinfo=UTC)),
    ]
    await store.finish_reconcile_run(run.id, status="done", counts={"missing_in_intacct": 1, "orphan_in_intacct": 1},
                                     exceptions=2, timings={}, error=None, summary={"remaining": 1},
                                     findings=findings)
    listing = await (await client.get("/reconciliation")).text()
    assert f'href="/reconciliation/{run.id}"' in listing and f'href="/reconciliation/{run.id}/csv"' in listing
    page = await (await client.get(f"/reconciliation/{run.id}")).text()
    assert "2 exceptions; 1 needs someone to look at it." in page and "Old &lt;b&gt;" in page
    resp = await client.get(f"/reconciliation/{run.id}/csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    stored = await store.reconcile_exceptions(run.id, 100)
    expected, rows = render_csv(stored)
    assert rows == 2 and (await resp.read()) == expected.encode("utf-8")
    assert f'filename="{csv_name(store.tenant_id, run.started_at)}"' in resp.headers["Content-Disposition"]


async def test_overview_chart_counts_synced_and_failed_per_hour(pages: Any, store: Store) -> None:
    client, _ = await pages()
    await store.upsert([job(70 + i, "c") for i in range(5)])
    for i in range(3):
        await sync(store, RecordKey("job", 70 + i))
    await fail(store, RecordKey("job", 73))
    now = datetime.now(UTC)
    hours = await store.outcomes_per_hour(now - timedelta(hours=1))
    hour = now.replace(minute=0, second=0, microsecond=0)
    assert hours == {(hour, "synced"): 3, (hour, "failed"): 1}
    html = await (await client.get("/")).text()
    assert "Last 24 hours: 3 synced, 1 failed" in html
    assert len(re.findall(r'<rect class="bar bar-synced"', html)) == 1


async def test_a_large_run_pages_its_exceptions(pages: Any, store: Store) -> None:
    client, _ = await pages()
    run = await store.start_reconcile_run("schedule", "all", False, None)
    findings = [Finding(Category.NAME, "job", 1000 + i, str(1000 + i), f"Name {i}", f"J-{1000 + i}", f"Other {i}",
                        "named differently", "none", True, None) for i in range(250)]
    await store.finish_reconcile_run(run.id, status="done", counts={"name_mismatch": 250}, exceptions=250,
                                     timings={}, error=None, summary={"remaining": 250}, findings=findings)
    first = await (await client.get(f"/reconciliation/{run.id}")).text()
    assert "Exceptions 1–200 of 250" in first and first.count("named differently") == 200
    following = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert following and following[1] == f"/reconciliation/{run.id}?after=200"
    second = await (await client.get(following[1])).text()
    assert "Exceptions 201–250 of 250" in second and second.count("named differently") == 50
    assert 'rel="next"' not in second and "Other 249" in second
    assert (await client.get(f"/reconciliation/{run.id}?after=x")).status == 400


class ZonedConfig:
    """A configuration whose report section names a time zone (report.timezone)."""

    def __init__(self, config: Config, timezone: str) -> None:
        self._config = config
        self.report = SimpleNamespace(timezone=timezone)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


async def test_times_are_shown_in_report_timezone(pages: Any, store: Store) -> None:
    client, _ = await pages(ZonedConfig(make_config(), "America/New_York"))  # type: ignore[arg-type]
    await store.upsert([job(81, "Zoned")])
    html = await (await client.get("/queue/job/81")).text()
    created = (await store.history(RecordKey("job", 81)))[0].at
    local = created.astimezone(ZoneInfo("America/New_York"))
    assert f"{local:%d %b %Y %H:%M:%S} {local.tzname()}".lstrip("0") in html
    assert "times in America/New_York" in html
    utc_client, _ = await pages()
    utc_html = await (await utc_client.get("/queue/job/81")).text()
    assert f"{created.astimezone(UTC):%H:%M:%S} UTC" in utc_html and "times in UTC" in utc_html
