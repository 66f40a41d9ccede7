"""The queue page's rules, in process against the real PostgreSQL: escaping, headers, sign-in, CSRF,
and who may see and do what from where."""

from __future__ import annotations

import re
from typing import Any

from daemon.store import RecordKey, Store
from statemachine import State
from tests.integration.ui_support import (
    HOSTILE,
    TOKEN,
    fail,
    form_csrf,
    job,
    make_config,
    set_cookie,
    sign_in,
)

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
