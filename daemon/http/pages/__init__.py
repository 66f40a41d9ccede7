"""The sync queue page: server-rendered HTML for the people who ask "why is job 24011 not in Intacct?".

`install` adds the pages to the daemon's aiohttp application. The pages read through the same store
as the JSON API and follow its rules of who may see what from where; acting needs the HTTP token,
exchanged once for a session cookie (see `session`).
"""

from __future__ import annotations

from aiohttp import web

from daemon.http.pages import actions, views
from daemon.http.pages.base import HOURS, KEYS, SERVICES, asset, setup_templates
from daemon.http.pages.chart import HourCache
from daemon.http.pages.ports import PageServices
from daemon.http.pages.session import Keys

__all__ = ["install", "is_page"]

API_PREFIXES = ("/v1/",)
API_PATHS = frozenset({"/livez", "/readyz", "/status", "/metrics"})


def is_page(path: str) -> bool:
    """Whether a path belongs to the pages (their own sign-in rules) rather than to the JSON API."""
    return path not in API_PATHS and not path.startswith(API_PREFIXES)


def install(app: web.Application, services: PageServices) -> None:
    """Add the pages, their assets and their sign-in to `app`."""
    app[SERVICES] = services
    app[KEYS] = Keys()
    app[HOURS] = HourCache()
    setup_templates(app, services)
    router = app.router
    router.add_get("/", views.overview, name="ui.overview")
    router.add_get("/queue", views.queue, name="ui.queue")
    router.add_get("/queue/{kind}/{id}", views.record, name="ui.record")
    router.add_post("/queue/{kind}/{id}/retry", actions.retry, name="ui.retry")
    router.add_post("/queue/{kind}/{id}/sync", actions.sync_now, name="ui.sync")
    router.add_get("/reconciliation", views.runs, name="ui.runs")
    router.add_post("/reconciliation", actions.start_reconcile, name="ui.reconcile")
    router.add_get("/reconciliation/{id}", views.run, name="ui.run")
    router.add_get("/reconciliation/{id}/csv", views.run_csv, name="ui.run_csv")
    router.add_get("/signin", actions.signin_form, name="ui.signin_form")
    router.add_post("/signin", actions.signin, name="ui.signin")
    router.add_post("/signout", actions.signout, name="ui.signout")
    router.add_get("/assets/{name}", asset, name="ui.asset")
