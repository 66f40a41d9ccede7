"""The simulator as an aiohttp application: ServiceTitan's wire plus a control API."""

from __future__ import annotations

from aiohttp import web

from simulators.servicetitan import api, control
from simulators.servicetitan.problems import problem
from simulators.servicetitan.state import STATE, ServiceTitanSimOptions, SimState

__all__ = ["create_app"]


@web.middleware
async def unknown_routes(request: web.Request, handler: api.Handler) -> web.StreamResponse:
    """Unknown paths and methods answer in ServiceTitan's problem format, not aiohttp's text."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (404, 405) and request.match_info.route.name is None:
            return problem(exc.status, exc.reason)
        raise


def create_app(options: ServiceTitanSimOptions | None = None) -> web.Application:
    """A fresh simulator; its state is ``app[STATE]``."""
    options = options or ServiceTitanSimOptions()
    app = web.Application(
        client_max_size=options.max_body_bytes,
        middlewares=[unknown_routes, api.api_middleware, control.control_errors],
    )
    app[STATE] = SimState(options)
    api.add_routes(app)
    control.add_routes(app)
    app.on_shutdown.append(_stop_hanging)
    return app


async def _stop_hanging(app: web.Application) -> None:
    app[STATE].stopping.set()
