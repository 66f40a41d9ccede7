"""Serving the HTTP application so that slow or idle clients cannot exhaust the daemon.

Every connection is a file descriptor, and the database, Intacct and ServiceTitan need theirs: a client
that opens hundreds of sockets and sends half a request on each (slowloris) must not be able to take
them. So a connection must deliver its first request head within HEAD_TIMEOUT_S, an idle keep-alive
connection is closed after KEEPALIVE_S (aiohttp also drops a later request left half-sent by then), a
body must arrive within the guard's BODY_TIMEOUT_S, and beyond MAX_CONNECTIONS a new connection is
answered 503 and closed at once.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

HEAD_TIMEOUT_S = 5.0
KEEPALIVE_S = 5.0
LINGER_S = 2.0
MAX_CONNECTIONS = 256  # far below LimitNOFILE= in the systemd units (8192) and systemd's default 1024
# The listen queue, and so the most connections asyncio accepts in one go: a refused one holds its
# descriptor until the next turns of the loop, so HTTP never holds more than MAX_CONNECTIONS + 2 × this.
ACCEPT_BACKLOG = 32
_END_OF_HEAD = b"\r\n\r\n"
_BUSY_BODY = json.dumps({"error": f"too many connections (at most {MAX_CONNECTIONS}); retry shortly"}).encode()
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class _Busy(asyncio.Protocol):
    """A connection beyond the cap: one 503, then closed (a clear answer rather than a silent wait)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class _Watched(asyncio.Protocol):
    """One accepted connection, passed through to aiohttp's protocol: counted, and closed unless its
    first request head arrives within HEAD_TIMEOUT_S."""

    def __init__(self, inner: asyncio.Protocol, site: LimitedSite) -> None:
        self._inner = inner
        self._site = site
        self._transport: asyncio.BaseTransport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._deadline = asyncio.get_running_loop().call_later(HEAD_TIMEOUT_S, self._too_slow)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._deadline is not None:
            seen = self._tail + data
            if _END_OF_HEAD in seen:
                self._deadline.cancel()
                self._deadline = None
            self._tail = seen[-(len(_END_OF_HEAD) - 1):]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._site.open_connections -= 1
        self._inner.connection_lost(exc)

    def _too_slow(self) -> None:
        self._deadline = None
        if self._transport is not None:
            self._transport.close()


class LimitedSite(web.BaseSite):
    """A TCP site like aiohttp's TCPSite, with the limits of this module."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int) -> None:
        super().__init__(runner)
        self._host, self._port = host, port
        self.open_connections = 0

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    def _protocol(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        if self.open_connections >= MAX_CONNECTIONS:
            return _Busy()
        # Counted here rather than in connection_made: asyncio accepts a burst of connections before
        # any of them is made, and each must see the count of those before it.
        self.open_connections += 1
        return _Watched(server(), self)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._host, self._port, reuse_address=True,
                                                backlog=ACCEPT_BACKLOG)


def runner(app: web.Application) -> web.AppRunner:
    """The application's runner: a short keep-alive (aiohttp's default is over an hour), and a short
    lingering close (the rest of a refused body is read for LINGER_S at most, not aiohttp's 10 s)."""
    return web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_S,
                         lingering_time=LINGER_S)
