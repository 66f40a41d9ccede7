"""Finding 3: a web page cannot drive the API of a loopback daemon.

A page may send a `text/plain` or body-less POST without a CORS preflight, and by DNS rebinding make the
browser send anything to 127.0.0.1 under the attacker's own host name. So every POST must declare
`application/json` (which a page can only send after a preflight the daemon never grants), and a request
whose `Host` is neither the listen address, a loopback name nor an `http.allowed_hosts` entry is refused.
"""

from __future__ import annotations

import pytest

from tests.acceptance.harness import Stack, free_port
from tests.security.support import raw_request, request_head

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def test_post_bodies_must_be_json(stack: Stack) -> None:
    port = free_port()
    # Loopback without a token: the set-up a browser attack aims at (no credential to steal).
    daemon = await stack.start_daemon(stack.config(http={"listen": f"127.0.0.1:{port}", "token": None}))

    async def post(path: str, content_type: str | None, body: bytes = b"") -> int:
        headers = {"Content-Length": str(len(body))}
        if content_type is not None:
            headers["Content-Type"] = content_type
        return (await raw_request(port, request_head("POST", path, port, headers=headers), body)).status

    # What an HTML form or a no-cors fetch() can send without asking the daemon first.
    assert await post("/v1/reconcile", "text/plain", b"{}") == 415
    assert await post("/v1/reconcile", None) == 415
    assert await post("/v1/reconcile", "application/x-www-form-urlencoded", b"a=b") == 415
    assert await post("/v1/ensure", "multipart/form-data; boundary=x", b"--x--") == 415
    assert await post("/v1/records/job/1/retry", "text/plain") == 415
    # The answer to a refused type is JSON, like every error.
    refused = await raw_request(port, request_head("POST", "/v1/reconcile", port,
                                                   headers={"Content-Type": "text/plain", "Content-Length": "0"}))
    assert refused.headers["content-type"].startswith("application/json") and "error" in refused.json()
    # A CORS preflight is never granted, so a page cannot send the JSON type either.
    preflight = await raw_request(port, request_head("OPTIONS", "/v1/reconcile", port, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}))
    assert preflight.status >= 400 and "access-control-allow-origin" not in preflight.headers

    # JSON (with or without a charset) is what the API takes.
    assert await post("/v1/reconcile", "application/json", b"{}") == 202
    assert await post("/v1/ensure", "application/json; charset=utf-8", b'{"jobs": "x"}') == 400
    assert daemon.proc.proc.poll() is None


async def test_unknown_host_headers_are_refused(stack: Stack) -> None:
    port = free_port()
    await stack.start_daemon(stack.config(http={"listen": f"127.0.0.1:{port}", "token": None,
                                                "allowed_hosts": ["sync.internal"]}))

    async def get(host: str | None, path: str = "/status") -> int:
        # None: HTTP/1.0 without a Host line.
        head = f"GET {path} HTTP/1.0".encode() if host is None else request_head("GET", path, port, host=host)
        return (await raw_request(port, head)).status

    # DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends that name.
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}",
                 f"sync.internal.evil.example:{port}", ""):
        assert await get(host) == 421, host
        assert await get(host, "/v1/records") == 421, host
    rebound_post = await raw_request(port, request_head("POST", "/v1/reconcile", port, host=f"evil.example:{port}",
                                                        headers={"Content-Type": "application/json",
                                                                 "Content-Length": "2"}), b"{}")
    assert rebound_post.status == 421 and "error" in rebound_post.json()
    assert await get(None) == 421

    # The listen address, loopback names and the configured names are answered.
    for host in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}",
                 "sync.internal", f"Sync.Internal:{port}", "sync.internal:443"):
        assert await get(host) == 200, host
