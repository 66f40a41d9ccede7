"""Finding 1: a reload never weakens authentication.

Before: SIGHUP with a file that moved `http.listen` to loopback and dropped the token kept the public
socket (the listen address needs a restart) but decided authentication from the new file, so every
endpoint, `POST /v1/reconcile` included, became open to the network. The socket in use decides; a reload
that would leave a public socket without a token (or with a short one) is refused like any invalid file.
"""

from __future__ import annotations

import pytest

from tests.acceptance.harness import Daemon, Stack, free_port, wait_until
from tests.security.support import raw_request, request_head

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOKEN = "public-token-0123456789"
NEW_TOKEN = "rotated-token-9876543210"


async def _reload(stack: Stack, daemon: Daemon, config: dict, marker: str) -> None:
    before = daemon.proc.output().count(marker)
    stack.write_config(config, daemon.config_path.name)
    daemon.hup()

    async def seen() -> bool:
        return daemon.proc.output().count(marker) > before

    await wait_until(seen, 20, f"{marker} after SIGHUP")


async def test_a_reload_never_opens_a_public_socket(stack: Stack) -> None:
    port = free_port()
    public = stack.config(http={"listen": f"0.0.0.0:{port}", "token": TOKEN})
    daemon = await stack.start_daemon(public)

    async def call(method: str, path: str, token: str | None) -> int:
        headers = {"Content-Type": "application/json", "Content-Length": "0"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return (await raw_request(port, request_head(method, path, port, headers=headers))).status

    assert await call("POST", "/v1/reconcile", None) == 401

    # The file now says loopback without a token; the socket on 0.0.0.0 stays until a restart.
    await _reload(stack, daemon, stack.config(http={"listen": f"127.0.0.1:{port}", "token": None}),
                  "reload_rejected")
    assert await call("POST", "/v1/reconcile", None) == 401
    assert await call("GET", "/status", None) == 401
    assert await call("GET", "/v1/records", None) == 401
    assert await call("POST", "/v1/reconcile", TOKEN) == 202  # the old settings stay in force

    # A token too short to stand guard over a public socket is refused the same way.
    await _reload(stack, daemon, stack.config(http={"listen": f"0.0.0.0:{port}", "token": "short-tok"}),
                  "reload_rejected")
    assert await call("GET", "/status", "short-tok") == 401
    assert await call("GET", "/status", TOKEN) == 200

    # A valid rotation applies at once: the new token works, the old one no longer does.
    await _reload(stack, daemon, stack.config(http={"listen": f"0.0.0.0:{port}", "token": NEW_TOKEN}), "reloaded")
    assert await call("GET", "/status", TOKEN) == 401
    assert await call("GET", "/status", NEW_TOKEN) == 200
    assert daemon.proc.proc.poll() is None
