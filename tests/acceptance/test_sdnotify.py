"""systemd's notify protocol (modelled on synapse's): what the daemon tells its service manager.

The acceptance test plays systemd: it binds the AF_UNIX datagram socket that $NOTIFY_SOCKET names,
starts `st-intacct-sync run` as a subprocess and reads the datagrams. The unit tests below drive
`daemon.sdnotify.Notifier` against real sockets (paths and abstract names).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from daemon.sdnotify import Notifier
from tests.acceptance.harness import TENANT, Stack, wait_until

pytestmark = pytest.mark.timeout(120)


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@dataclass(frozen=True)
class Message:
    """One datagram: when it arrived (time.monotonic, the same clock as MONOTONIC_USEC) and its fields."""

    at: float
    fields: dict[str, str]

    def __contains__(self, assignment: str) -> bool:
        key, _, value = assignment.partition("=")
        return self.fields.get(key) == value


class ServiceManager(asyncio.DatagramProtocol):
    """The receiving end of $NOTIFY_SOCKET, as systemd holds it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        at = time.monotonic()
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        self.messages.append(Message(at, fields))

    def having(self, assignment: str, after: float = 0.0) -> list[Message]:
        return [m for m in self.messages if assignment in m and m.at > after]

    async def wait_for(self, assignment: str, *, after: float = 0.0, timeout: float = 30) -> Message:
        async def arrived() -> Message | None:
            found = self.having(assignment, after)
            return found[0] if found else None

        message: Message = await wait_until(arrived, timeout, f"{assignment} from the daemon", interval=0.01)
        return message


@pytest.fixture
def socket_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, or a short directory when tmp_path is too long for an AF_UNIX address (108 bytes)."""
    if len(str(tmp_path / "notify.sock")) < 100:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="sis-"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
async def service_manager(socket_dir: Path) -> AsyncIterator[tuple[str, ServiceManager]]:
    path = str(socket_dir / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(ServiceManager, sock=sock)
    try:
        yield path, protocol
    finally:
        transport.close()


async def _livez(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def test_ready_watchdog_reload_and_stop(stack: Stack, service_manager: tuple[str, ServiceManager]) -> None:
    path, systemd = service_manager
    # Each Intacct request takes 0.5 s, so the connection check (a session, then a probe query) takes
    # at least 1 s: a READY sent before the check would show.
    await stack.ia.faults(latency=0.5)
    config = stack.config()
    base = f"http://{config['http']['listen']}"
    polls: list[tuple[float, bool]] = []  # (when the poll began, whether /livez answered 200)

    async def poll_livez() -> None:
        while True:
            began = time.monotonic()
            polls.append((began, await _livez(stack.session, base + "/livez")))
            await asyncio.sleep(0.02)

    poller = asyncio.create_task(poll_livez())
    try:
        daemon = await stack.start_daemon(config, wait=False, env={
            "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": ""})
        ready = await systemd.wait_for("READY=1")
        # At READY the daemon is really up: HTTP answers, both connections were checked, the database
        # is migrated and holds this tenant's settings.
        assert await _livez(stack.session, base + "/livez")
        status = await daemon.status()
        assert status["connections"]["intacct"]["state"] == "ok", status["connections"]
        assert status["connections"]["servicetitan"]["state"] == "ok", status["connections"]
        assert (await stack.ia.stats())["session_requests"] >= 1
        assert (await stack.st.call("GET", "/_sim/stats"))["tokens_issued"] >= 1
        conn = await asyncpg.connect(stack.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM tenant_settings WHERE tenant_id = $1", TENANT) == 1
        finally:
            await conn.close()
        await asyncio.sleep(0.2)  # a few more /livez polls after READY
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
    # /livez never failed once READY had been sent, and it was not answering before the start (so the
    # check above means something).
    assert all(ok for began, ok in polls if began > ready.at), "a /livez poll failed after READY=1"
    assert not polls[0][1], "/livez answered before the daemon was started"
    # The progress reports came first, and READY waited for the slow connection check.
    checking = systemd.having("STATUS=checking the ServiceTitan and Intacct connections")
    assert systemd.having("STATUS=connecting to the database")[0].at < checking[0].at < ready.at
    assert ready.at - checking[0].at >= 0.9
    assert "intacct ok" in ready.fields["STATUS"] and "servicetitan ok" in ready.fields["STATUS"]

    # WATCHDOG=1 every half of WATCHDOG_USEC (2 s), never close to missing the timeout.
    async def five_pings() -> bool:
        return len(systemd.having("WATCHDOG=1")) >= 5

    await wait_until(five_pings, 15, "five WATCHDOG=1")
    pings = [m.at for m in systemd.having("WATCHDOG=1")]
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert 0.8 <= statistics.median(gaps) <= 1.25, gaps
    assert max(gaps) < 1.9, gaps
    assert min(pings) >= ready.at  # the watchdog starts once the daemon is ready

    # SIGHUP: RELOADING=1 with the monotonic time of the request, then READY=1 again.
    before = monotonic_usec()
    mark = time.monotonic()
    daemon.hup()
    reloading = await systemd.wait_for("RELOADING=1", after=mark)
    received = int(reloading.at * 1_000_000)
    usec = int(reloading.fields["MONOTONIC_USEC"])  # in the same datagram, as systemd requires
    assert before <= usec <= received, (before, usec, received)
    assert received - usec < 2_000_000
    ready_again = await systemd.wait_for("READY=1", after=reloading.at)
    assert ready_again.at >= reloading.at

    # An invalid file on reload: refused, the old settings stay, and the daemon is ready again.
    daemon.config_path.write_text("database: [unclosed\n")
    mark = time.monotonic()
    daemon.hup()
    reloading = await systemd.wait_for("RELOADING=1", after=mark)
    await systemd.wait_for("READY=1", after=reloading.at)
    assert await _livez(stack.session, base + "/livez")
    assert daemon.proc.proc.poll() is None

    # SIGTERM: STOPPING=1 first, then a graceful exit 0; nothing claims readiness afterwards.
    mark = time.monotonic()
    daemon.proc.signal(signal.SIGTERM)
    assert await daemon.proc.wait_exit(60) == 0  # the event loop keeps reading datagrams meanwhile
    exited = time.monotonic()
    daemon.proc.stop()  # closes the log
    stopping = systemd.having("STOPPING=1", after=mark)
    assert len(stopping) == 1, systemd.messages[-5:]
    assert stopping[0].at < exited
    assert not systemd.having("READY=1", after=stopping[0].at)
    assert "reload_rejected" in daemon.proc.output()


async def test_a_missing_notify_socket_does_not_stop_the_daemon(stack: Stack, socket_dir: Path) -> None:
    """$NOTIFY_SOCKET naming nothing (the manager went away): the daemon runs and stops as usual."""
    gone = str(socket_dir / "nobody-listens.sock")
    daemon = await stack.start_daemon(stack.config(), env={"NOTIFY_SOCKET": gone, "WATCHDOG_USEC": "1000000",
                                                           "WATCHDOG_PID": ""})
    await asyncio.sleep(1.5)  # a few watchdog pings into the void
    assert (await daemon.status())["connections"]["intacct"]["state"] == "ok"
    daemon.hup()
    await asyncio.sleep(0.5)
    assert daemon.proc.proc.poll() is None
    assert daemon.proc.stop(60) == 0
    output = daemon.proc.output()
    assert output.count("sd_notify_failed") == 1, "the failure is logged once, not at every ping"
    assert "stopped" in output


# ---- daemon.sdnotify.Notifier against real sockets ------------------------------------------------


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_notifier_sends_to_a_socket_path(socket_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(socket_dir / "n.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    with _receiver(path) as sock:
        notifier = Notifier()
        assert notifier.enabled
        assert notifier.ready("up\nand running")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up and running"  # one line per field
        assert notifier.stopping() and sock.recv(4096) == b"STOPPING=1"
        assert notifier.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
        assert notifier.status("draining") and sock.recv(4096) == b"STATUS=draining"
        before = monotonic_usec()
        assert notifier.reloading()
        reloading, usec = sock.recv(4096).decode().split("\n")
        assert reloading == "RELOADING=1"
        assert before <= int(usec.removeprefix("MONOTONIC_USEC=")) <= monotonic_usec()


def test_notifier_sends_to_an_abstract_socket() -> None:
    name = f"sis-notify-{uuid.uuid4().hex}"
    with _receiver("\0" + name) as sock:
        notifier = Notifier(f"@{name}")
        assert notifier.send("READY=1", "STATUS=abstract")
        assert sock.recv(4096) == b"READY=1\nSTATUS=abstract"


def test_notifier_without_notify_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert not notifier.ready("x") and not notifier.reloading() and not notifier.stopping()
    assert not notifier.watchdog() and not notifier.status("x")
    assert not Notifier("").enabled


def test_notifier_reports_an_unreachable_socket_instead_of_raising(socket_dir: Path) -> None:
    notifier = Notifier(str(socket_dir / "absent.sock"))
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert Notifier("@" + uuid.uuid4().hex).ready() is False  # an abstract name nobody bound
    with _receiver(str(socket_dir / "late.sock")) as sock:  # and it recovers when one appears
        notifier.address = str(socket_dir / "late.sock")
        assert notifier.watchdog() and sock.recv(4096) == b"WATCHDOG=1"


@pytest.mark.parametrize(
    ("usec", "pid", "interval"),
    [
        ("2000000", None, 1.0),
        ("30000000", "self", 15.0),
        ("2000000", "1", None),  # meant for another process
        ("0", None, None),
        ("soon", None, None),  # malformed: the watchdog stays off, the daemon starts
        ("", None, None),
    ],
)
def test_notifier_watchdog_interval(usec: str, pid: str | None, interval: float | None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is None:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)
    assert Notifier("@unused").watchdog_interval == interval
