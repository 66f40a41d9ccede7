"""The simulator as an aiohttp application: the gateway plus the ``/_sim/`` control API."""

from __future__ import annotations

from aiohttp import web

from simulators.intacct import control, gateway
from simulators.intacct.gateway import GATEWAY_PATH, STATE
from simulators.intacct.state import IntacctSimOptions, SimState


def create_app(options: IntacctSimOptions | None = None, *, state: SimState | None = None) -> web.Application:
    """A Sage Intacct XML gateway in memory; pass ``state`` to serve one company from several apps."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state if state is not None else SimState(options)
    app.router.add_post(GATEWAY_PATH, gateway.handle)
    app.router.add_routes(control.routes)
    return app
