"""The pages' plumbing: Jinja2 through aiohttp-jinja2, who is looking (the viewer), the rules every
form POST passes, and the headers every page carries.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from daemon import logs
from daemon.http.pages import chart, session
from daemon.http.pages import format as fmt
from daemon.http.pages.ports import PageServices

log = logs.get("st_intacct_sync.ui")

SERVICES: web.AppKey[PageServices] = web.AppKey("ui_services")
KEYS: web.AppKey[session.Keys] = web.AppKey("ui_keys")
HOURS: web.AppKey[chart.HourCache] = web.AppKey("ui_chart_hours")
VERSION = importlib.metadata.version("st-intacct-sync")
REFRESH_S = 30
FORM_TYPE = "application/x-www-form-urlencoded"
# Nothing from anywhere else: no inline script or style, no frames, forms post only here.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ASSET_TYPES = {"style.css": "text/css", "refresh.js": "text/javascript", "icon.svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    version: str


def load_assets() -> dict[str, Asset]:
    folder = resources.files("daemon.http.pages").joinpath("static")
    assets = {}
    for name, content_type in ASSET_TYPES.items():
        body = folder.joinpath(name).read_bytes()
        assets[name] = Asset(body, content_type, hashlib.sha256(body).hexdigest()[:12])
    return assets


@dataclass(frozen=True)
class Viewer:
    """Who is looking, and what they may do."""

    signed_in: bool
    can_sign_in: bool  # a token is configured
    can_act: bool  # signed in, or no token exists (loopback only)
    may_view: bool  # on loopback anyone may read, as with the JSON API; elsewhere only a session
    nonce: str
    csrf: str
    new_visitor: bool


def viewer_of(request: web.Request) -> Viewer:
    services = request.app[SERVICES]
    token = services.config().http.token
    # The socket in use decides, not a reloaded file (a reload cannot move the listener).
    loopback = services.listener.loopback
    key = request.app[KEYS].key(token)
    current = session.read_session(key, request.cookies.get(session.SESSION_COOKIE)) if token else None
    visitor = request.cookies.get(session.VISITOR_COOKIE, "")
    new_visitor = not (16 <= len(visitor) <= 64 and visitor.replace("-", "").replace("_", "").isalnum())
    if new_visitor:
        visitor = session.new_visitor()
    nonce = current.nonce if current else visitor
    signed_in = current is not None
    return Viewer(
        signed_in=signed_in, can_sign_in=token is not None,
        can_act=signed_in or (token is None and loopback),
        may_view=signed_in or loopback,
        nonce=nonce, csrf=session.csrf_token(key, nonce), new_visitor=new_visitor,
    )


def secure_cookies(request: web.Request) -> bool:
    """`Secure` whenever the listener is reachable from elsewhere (a browser then speaks HTTPS to a proxy)."""
    return not request.app[SERVICES].listener.loopback


def finish(request: web.Request, response: web.StreamResponse, viewer: Viewer | None) -> web.StreamResponse:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if viewer is not None and viewer.new_visitor and not viewer.signed_in:
        response.set_cookie(session.VISITOR_COOKIE, viewer.nonce, httponly=True, samesite="Strict",
                            secure=secure_cookies(request), path="/")
    return response


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs the page (a reload never repeats the action)."""
    return web.Response(status=303, headers={"Location": location})


def local_path(target: str | None, default: str = "/") -> str:
    """A redirect target that can only lead to a page of this daemon."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def render(request: web.Request, viewer: Viewer, template: str, status: int = 200, *, section: str = "",
           refresh: int | None = None, **context: Any) -> web.Response:
    services = request.app[SERVICES]
    config = services.config()
    report = config.report
    base = {
        "viewer": viewer, "section": section, "refresh": refresh, "request_path": request.path_qs,
        "clock": fmt.Clock(report.zone), "tz_name": report.timezone, "tenant_id": services.store.tenant_id,
        "version": VERSION, "notice": None,
    }
    base.update(context)
    return aiohttp_jinja2.render_template(template, request, base, status=status)


def error_page(request: web.Request, viewer: Viewer, status: int, title: str, message: str) -> web.Response:
    return render(request, viewer, "error.html", status, code=status, title=title, message=message)


Handler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]
FormHandler = Callable[[web.Request, Viewer, MultiDictProxy[str | Any]], Awaitable[web.StreamResponse]]


def page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page: readable by whoever may view; errors become HTML pages, never tracebacks."""
    return _page(handler, public=False)


def public_page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page anyone may open (the sign-in form)."""
    return _page(handler, public=True)


def _page(handler: Handler, *, public: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def run(request: web.Request) -> web.StreamResponse:
        viewer = viewer_of(request)
        if not viewer.may_view and not public:
            return finish(request, redirect("/signin?next=" + _quote(request.path_qs)), viewer)
        return finish(request, await _guarded(request, viewer, handler), viewer)

    return run


def form(*, needs_act: bool = True) -> Callable[[FormHandler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """A form POST: url-encoded only, carrying the CSRF token of the viewer's session (or visit)."""

    def wrap(handler: FormHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            viewer = viewer_of(request)

            async def checked(request: web.Request, viewer: Viewer) -> web.StreamResponse:
                if request.content_type != FORM_TYPE:
                    return error_page(request, viewer, 415, "Not a form",
                                      "These pages accept only their own forms.")
                data = await request.post()
                key = request.app[KEYS].key(request.app[SERVICES].config().http.token)
                given = data.get("csrf")
                if viewer.new_visitor or not session.csrf_ok(key, viewer.nonce, given if isinstance(given, str)
                                                             else None):
                    return error_page(request, viewer, 403, "The form has expired",
                                      "Reload the page and try again.")
                if needs_act and not viewer.can_act:
                    back = request.path.rsplit("/", 1)[0] if request.path.count("/") > 1 else request.path
                    return redirect("/signin?next=" + _quote(back))
                return await handler(request, viewer, data)

            return finish(request, await _guarded(request, viewer, checked), viewer)

        return run

    return wrap


async def _guarded(request: web.Request, viewer: Viewer, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request, viewer)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        titles = {400: "That request is not understood", 404: "Not found", 413: "Too large"}
        return error_page(request, viewer, exc.status, titles.get(exc.status, exc.reason), exc.text or exc.reason)
    except Exception:
        log.exception("ui_handler_failed", path=request.path, method=request.method)
        return error_page(request, viewer, 500, "Something went wrong",
                          "The daemon could not make this page; its log says why.")


def _quote(text: str) -> str:
    return quote(text, safe="/")


def setup_templates(app: web.Application, services: PageServices) -> None:
    assets = load_assets()
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("daemon.http.pages", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(state_word=fmt.state_word, iso=fmt.iso, error_words=fmt.error_words,
                       redact=lambda text: services.redactor.redact(str(text)))
    env.globals["asset"] = lambda name: f"/assets/{name}?v={assets[name].version}"
    app[ASSETS] = assets


ASSETS: web.AppKey[dict[str, Asset]] = web.AppKey("ui_assets")


async def asset(request: web.Request) -> web.StreamResponse:
    found = request.app[ASSETS].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    response = web.Response(body=found.body, content_type=found.content_type)
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
