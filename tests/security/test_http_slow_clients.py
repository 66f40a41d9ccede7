"""Finding 2: slow or idle clients cannot exhaust the daemon.

Before: aiohttp's keep-alive of an hour and no connection cap let anyone who could connect hold hundreds
of sockets; at the process's descriptor limit the database, Intacct and ServiceTitan connections failed
with EMFILE. Now a half-sent request is dropped after a few seconds, an idle keep-alive connection soon
after its answer, a body that does not arrive in time is answered 408, and connections beyond a cap are
answered 503 and closed at once, so the daemon's descriptors stay bounded and it keeps syncing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import psutil
import pytest

from tests.acceptance.harness import Stack, free_port
from tests.security.support import raw_request, request_head

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DAEMON_NOFILE = 512  # the daemon's descriptor limit in this test (systemd's default soft limit is 1024)
ATTACKERS = 600  # more slow clients than the daemon has descriptors
ATTACK_S = 25.0
CLOSED_WITHIN_S = 15.0  # a half-sent request must be dropped within this (the daemon allows a few seconds)


@dataclass
class Attack:
    """What the slow clients saw."""

    opened: int = 0
    refused_at_connect: int = 0
    answered_503: int = 0
    dropped: list[float] = field(default_factory=list)  # seconds each half-sent request was held open
    still_open: int = 0


async def _slow_client(port: int, attack: Attack, until: float) -> None:
    """Slowloris: open, send part of a request head, then one more header line a second, never the end."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            attack.refused_at_connect += 1
            await asyncio.sleep(0.5)
            continue
        attack.opened += 1
        started = time.monotonic()
        try:
            writer.write(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                except TimeoutError:
                    if time.monotonic() - started > 60:
                        attack.still_open += 1
                        return
                    writer.write(b"X-Slow: 1\r\n")
                    continue
                if data.startswith(b"HTTP/1.1 503"):
                    attack.answered_503 += 1
                    await reader.read()
                    await asyncio.sleep(0.5)
                    break
                if not data:  # closed by the daemon
                    attack.dropped.append(time.monotonic() - started)
                    break
        except (ConnectionError, OSError):
            attack.dropped.append(time.monotonic() - started)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def test_slowloris_is_dropped_and_the_daemon_keeps_syncing(stack: Stack) -> None:
    port = free_port()
    daemon = await stack.start_daemon(stack.config(http={"listen": f"127.0.0.1:{port}"}),
                                      wrapper=["prlimit", f"--nofile={DAEMON_NOFILE}", "--"])
    process = psutil.Process(daemon.proc.pid)
    baseline_fds = process.num_fds()
    customer = await stack.st.customer("Slow Clients Ltd")

    attack = Attack()
    until = time.monotonic() + ATTACK_S
    clients = [asyncio.create_task(_slow_client(port, attack, until)) for _ in range(ATTACKERS)]
    peak_fds = baseline_fds
    try:
        await asyncio.sleep(3)  # the attack is in full swing
        # ServiceTitan gets a new job: the daemon must poll it and create its project meanwhile.
        job = await stack.st.job(customer["id"])
        synced_during_attack = False
        while time.monotonic() < until:
            peak_fds = max(peak_fds, process.num_fds())
            if not synced_during_attack:
                synced_during_attack = f"J-{job['jobNumber']}" in await stack.ia.projects()
            await asyncio.sleep(0.5)
    finally:
        await asyncio.gather(*clients, return_exceptions=True)

    print(f"\n[security] slowloris: fds baseline {baseline_fds}, peak {peak_fds} (limit {DAEMON_NOFILE}); "
          f"{attack.opened} connections, {attack.answered_503} answered 503, {len(attack.dropped)} dropped "
          f"(longest held {max(attack.dropped, default=0):.1f} s), {attack.still_open} still open after 60 s, "
          f"{attack.refused_at_connect} refused at connect; job synced during the attack: {synced_during_attack}")
    assert attack.still_open == 0
    assert attack.dropped and max(attack.dropped) < CLOSED_WITHIN_S, attack.dropped
    assert attack.answered_503 > 0  # the cap turned the surplus away at once
    assert peak_fds < DAEMON_NOFILE - 100, peak_fds  # room left for the database and both APIs
    assert synced_during_attack
    # Afterwards the daemon answers as before, and its log holds no descriptor error.
    status, _ = await daemon.http.status_and_json("GET", "/livez")
    assert status == 200
    assert "Too many open files" not in daemon.proc.output()
    assert daemon.proc.proc.poll() is None


async def test_idle_and_trickling_clients_are_dropped(stack: Stack) -> None:
    port = free_port()
    daemon = await stack.start_daemon(stack.config(http={"listen": f"127.0.0.1:{port}"}))

    # Keep-alive: a client that got its answer and then sits idle is closed within seconds.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    started = time.monotonic()
    first = await asyncio.wait_for(reader.read(4096), 10)
    assert first.startswith(b"HTTP/1.1 200")
    rest = await asyncio.wait_for(reader.read(), CLOSED_WITHIN_S)
    idle_s = time.monotonic() - started
    writer.close()
    assert rest == b"" and idle_s < CLOSED_WITHIN_S

    # A body announced but sent a byte at a time is not waited for: 408, and the connection closes.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_head("POST", "/v1/ensure", port, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {daemon.token}",
        "Content-Length": "1000"}) + b"\r\n\r\n{")
    started = time.monotonic()
    answer = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(CLOSED_WITHIN_S + 30):
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), 1.0)
                except TimeoutError:
                    writer.write(b" ")
                    continue
                if not chunk:
                    break
                answer += chunk
    body_s = time.monotonic() - started
    writer.close()
    print(f"\n[security] idle keep-alive closed after {idle_s:.1f} s; trickled body answered after {body_s:.1f} s: "
          f"{answer[:40]!r}")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert body_s < CLOSED_WITHIN_S

    # Whole requests still work.
    ok = await raw_request(port, request_head("GET", "/livez", port))
    assert ok.status == 200
