"""Finding 4: bad input is a 4xx with a one-line JSON error, never a 500, never a traceback in the log.

Before: a non-UTF-8 byte in `Authorization` raised inside the token check (a 500 whose logged traceback
showed the expected `Bearer` header), a cursor holding `Infinity` or `1e400` raised OverflowError, and
ids beyond 64 bits reached PostgreSQL.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.acceptance.harness import Stack, free_port, wait_until
from tests.security.support import raw_request, request_head

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOKEN = "bad-input-token-7a1f93c4"
BIG = 2**64  # beyond PostgreSQL's bigint


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def test_bad_input_is_a_4xx_without_traceback(stack: Stack) -> None:
    port = free_port()
    daemon = await stack.start_daemon(stack.config(http={"listen": f"127.0.0.1:{port}", "token": TOKEN}))
    answers = []

    async def send(method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
                   raw_auth: bytes | None = None) -> int:
        head = request_head(method, path, port, headers={"Content-Length": str(len(body)), **(headers or {})})
        if raw_auth is not None:
            head += b"\r\nAuthorization: " + raw_auth
        answer = await raw_request(port, head, body)
        answers.append((method, path, answer))
        return answer.status

    json_type = {"Content-Type": "application/json"}
    # A byte that is not UTF-8, in an otherwise right token, and alone.
    for auth in (b"Bearer " + TOKEN.encode()[:-1] + b"\xff", b"Bearer \xff\xfe", b"\xc3\x28"):
        assert await send("POST", "/v1/reconcile", headers=json_type, raw_auth=auth) == 401, auth
    # Cursors that decode to numbers Python cannot make an int of, or PostgreSQL cannot store.
    for raw in ('["2026-01-01T00:00:00+00:00", "job", Infinity]', '["2026-01-01T00:00:00+00:00", "job", 1e400]',
                '["2026-01-01T00:00:00+00:00", "job", NaN]', f'["2026-01-01T00:00:00+00:00", "job", {BIG}]',
                '["2026-01-01T00:00:00+00:00", "job", 1.5]', '"just a string"', "[]"):
        assert await send("GET", f"/v1/records?after={_cursor(raw)}") == 400, raw
    # Ids beyond 64 bits, in paths and in bodies.
    assert await send("GET", f"/v1/records/job/{BIG}") == 400
    assert await send("GET", f"/v1/records/project/{2**63}") == 400
    assert await send("POST", f"/v1/records/job/{BIG}/retry", headers={**json_type, "Authorization": f"Bearer {TOKEN}"}
                      ) == 400
    for ids in ([BIG], [2**63], [1, 10**30]):
        body = json.dumps({"jobs": ids, "timeout_s": 1}).encode()
        assert await send("POST", "/v1/ensure", headers={**json_type, "Authorization": f"Bearer {TOKEN}"},
                          body=body) == 400, ids
    # The largest id PostgreSQL holds is still an ordinary unknown record.
    assert await send("GET", f"/v1/records/job/{2**63 - 1}") == 404

    for method, path, answer in answers:
        error = answer.json()
        assert set(error) == {"error"} and "\n" not in error["error"], (method, path, error)
        assert answer.body.count(b"\n") <= 1
    assert (await daemon.status())["service"] == "st-intacct-sync"  # still serving
    # A line the daemon logs after all of the above, so that the log is complete when read.
    daemon.hup()
    await wait_until(lambda: _async("reloaded" in daemon.proc.output()), 20, "the reload line")
    log = daemon.proc.output()
    assert "Traceback" not in log and "http_handler_failed" not in log, log[-4000:]
    assert TOKEN not in log and TOKEN[:-1] not in log


async def _async(value: bool) -> bool:
    return value
