"""The simulator as an aiohttp application: the gateway plus the ``/_sim/`` control API."""

from __future__ import annotations

from aiohttp import web

from simulators.intacct import control, gateway, rest_routes
from simulators.intacct.gateway import GATEWAY_PATH, STATE
from simulators.intacct.rest_api import REST_STATE
from simulators.intacct.rest_options import RestOptions
from simulators.intacct.rest_state import RestState
from simulators.intacct.state import IntacctSimOptions, SimState


def create_app(
    options: IntacctSimOptions | None = None,
    *,
    state: SimState | None = None,
    rest_options: RestOptions | None = None,
) -> web.Application:
    """A Sage Intacct company in memory behind both APIs (XML gateway and REST); pass ``state`` to
    serve one company from several apps."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state if state is not None else SimState(options)
    app[REST_STATE] = RestState(app[STATE], rest_options)
    app.router.add_post(GATEWAY_PATH, gateway.handle)
    app.router.add_routes(control.routes)
    app.router.add_routes(rest_routes.routes)
    return app
