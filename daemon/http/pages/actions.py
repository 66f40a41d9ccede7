"""What a signed-in person can do from the pages: sign in and out, retry a refused record, sync a
record now, start a reconciliation. Each answers with a redirect (303), so that a reload repeats
nothing, carrying only a fixed notice code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from daemon.http.pages import session
from daemon.http.pages.base import (
    KEYS,
    SERVICES,
    Viewer,
    form,
    local_path,
    public_page,
    redirect,
    render,
    secure_cookies,
)
from daemon.http.pages.views import record_key
from statemachine import State

SYNC_NOW_TIMEOUT_S = 15.0
RETRY_PRIORITY = 5
FAILED_SIGN_IN_DELAY_S = 1.0  # slows guessing; the token itself is long


@public_page
async def signin_form(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return render(request, viewer, "signin.html", next=local_path(request.query.get("next")), failed=False)


def _text(data: MultiDictProxy[Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


@form(needs_act=False)
async def signin(request: web.Request, viewer: Viewer, data: MultiDictProxy[Any]) -> web.StreamResponse:
    token = request.app[SERVICES].config().http.token
    target = local_path(_text(data, "next"))
    if not session.token_matches(_text(data, "token"), token):
        await asyncio.sleep(FAILED_SIGN_IN_DELAY_S)
        return render(request, viewer, "signin.html", 401, next=target, failed=True)
    response = redirect(target)
    value = session.new_session(request.app[KEYS].key(token))
    response.set_cookie(session.SESSION_COOKIE, value, httponly=True, samesite="Strict",
                        secure=secure_cookies(request), path="/", max_age=session.SESSION_SECONDS)
    return response


@form(needs_act=False)
async def signout(request: web.Request, viewer: Viewer, data: MultiDictProxy[Any]) -> web.StreamResponse:
    response = redirect("/?done=signed-out")
    response.del_cookie(session.SESSION_COOKIE, path="/")
    return response


@form()
async def retry(request: web.Request, viewer: Viewer, data: MultiDictProxy[Any]) -> web.StreamResponse:
    key = record_key(request)
    done = await request.app[SERVICES].store.retry_failed([key], priority=RETRY_PRIORITY,
                                                          reason="operator retry (queue page)")
    return redirect(f"/queue/{key.kind}/{key.st_id}?done={'retried' if done else 'not-failed'}")


@form()
async def sync_now(request: web.Request, viewer: Viewer, data: MultiDictProxy[Any]) -> web.StreamResponse:
    key = record_key(request)
    outcome = await request.app[SERVICES].gate.ensure([key], SYNC_NOW_TIMEOUT_S)
    synced = outcome.ok and all(r.state == State.SYNCED.value for r in outcome.results)
    return redirect(f"/queue/{key.kind}/{key.st_id}?done={'sync-done' if synced else 'sync-waiting'}")


@form()
async def start_reconcile(request: web.Request, viewer: Viewer, data: MultiDictProxy[Any]) -> web.StreamResponse:
    reconciler = request.app[SERVICES].reconciler
    if reconciler is None:
        return redirect("/reconciliation?done=reconcile-unavailable")
    await reconciler.start_run("http")
    return redirect("/reconciliation?done=reconcile-started")
