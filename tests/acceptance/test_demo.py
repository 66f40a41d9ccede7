"""`st-intacct-sync demo` as a new user runs it: no config file, an embedded PostgreSQL, Ctrl-C to stop.

The demo runs as a subprocess with its output read line by line; the checks go through its HTTP
endpoints and the process table, as an operator would see them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.acceptance.harness import REPO, free_port

SYNCED = re.compile(r"^all (\d+) records synced in ")
STATE_DIR = re.compile(r"^\s+state dir\s+(\S+)")
# A job's Intacct project under a project's: PROJECTID, NAME (with spaces), PARENTID, CUSTOMERID.
ROLLED_UP = re.compile(r"^\s+(J-\S+)\s+.+?\s+(P-\S+)\s+\S+$")


class Demo:
    """The demo subprocess and every line it has printed so far."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "demo", *args], cwd=REPO, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = pattern.search(line)
                if match:
                    return match
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"demo never printed {pattern.pattern!r} (exit {self.proc.poll()}):\n{self.output}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    # A TMPDIR as long as macOS's: PostgreSQL's socket path would not fit under it, so the demo puts
    # its state directory in /tmp instead (and pgserver's lock file lands here).
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)}


@pytest.fixture
def run_demo(demo_env: dict[str, str]) -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.stop()


def _get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.load(response)


def _processes_using(path: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(path in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _gone(proc: psutil.Process, timeout: float = 10) -> bool:
    """Ended (a zombie waiting for init to reap it counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.timeout(180)
def test_demo_syncs_everything_and_stops_cleanly_on_ctrl_c(
    run_demo: list[Demo], demo_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    started = time.monotonic()
    demo = Demo(["--listen", f"127.0.0.1:{port}"], demo_env)
    run_demo.append(demo)

    state_dir = demo.wait_for(STATE_DIR, 30)[1]
    assert Path(state_dir).parent == Path("/tmp"), "a long TMPDIR should fall back to /tmp"
    synced = int(demo.wait_for(SYNCED, 120)[1])
    assert synced > 0
    demo.wait_for(re.compile(r"^Now a change in ServiceTitan every"), 60)  # the summary and the hints are out
    time_to_synced = time.monotonic() - started

    status, doc = _get(f"http://127.0.0.1:{port}/status")
    assert status == 200
    queue = doc["queue"]
    assert isinstance(queue, dict)
    assert queue["synced"] > 0 and queue["pending"] == 0 and queue["failed"] == 0, queue
    connections = doc["connections"]
    assert isinstance(connections, dict)
    assert {name: c["state"] for name, c in connections.items()} == {"intacct": "ok", "servicetitan": "ok"}

    rolled_up = [m for m in map(ROLLED_UP.match, demo.lines) if m]
    assert rolled_up, f"no sample job project with a PARENTID in:\n{demo.output}"
    assert f"curl localhost:{port}/status" in demo.output
    # The printed address of the queue page answers with the page.
    page = demo.wait_for(re.compile(r"the sync queue page, in a browser: (http://\S+/)$"), 1)[1]
    assert page == f"http://127.0.0.1:{port}/"
    with urllib.request.urlopen(page, timeout=30) as response:
        html = response.read().decode()
    assert response.status == 200 and "<h1>Sync queue</h1>" in html and "In Intacct" in html
    # The printed ensure example works with the printed (demo-only) token.
    token = demo.wait_for(re.compile(r"Authorization: Bearer ([\w-]+)'"), 1)[1]
    body = demo.wait_for(re.compile(r"-d '(\{\"jobs\".*\})'$"), 1)[1]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/ensure", data=body.encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        ensured = json.load(response)
    assert response.status == 200 and {r["state"] for r in ensured["results"]} == {"synced"}, ensured

    # What must be gone afterwards: the demo's children (recorded now) and the embedded PostgreSQL,
    # which pg_ctl detaches from the demo (its processes are found by their data directory).
    parent = psutil.Process(demo.proc.pid)
    children = parent.children(recursive=True)
    postgres = _processes_using(state_dir)
    assert postgres, "the embedded PostgreSQL should run under the state dir"

    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0, demo.output
    demo._reader.join(10)
    assert "stopping" in demo.output

    left = [p for p in [*children, *postgres] if not _gone(p)]
    assert left == [], f"still running after the demo: {left}"
    assert _processes_using(state_dir) == []
    assert not Path(state_dir).exists(), f"{state_dir} was not removed"
    print(f"demo: {synced} records synced, summary out after {time_to_synced:.1f} s")


@pytest.mark.timeout(180)
def test_demo_on_the_rest_api_syncs_everything(run_demo: list[Demo], demo_env: dict[str, str]) -> None:
    port = free_port()
    demo = Demo(["--listen", f"127.0.0.1:{port}", "--intacct-api", "rest"], demo_env)
    run_demo.append(demo)
    demo.wait_for(re.compile(r"^  Intacct simulator .*/ia/api/v1 \(REST API\)"), 30)
    synced = int(demo.wait_for(SYNCED, 120)[1])
    status, doc = _get(f"http://127.0.0.1:{port}/status")
    assert status == 200
    queue = doc["queue"]
    assert isinstance(queue, dict) and queue["synced"] >= synced > 0
    assert queue["pending"] == 0 and queue["failed"] == 0 and queue["blocked-by-connection"] == 0, queue
    connections = doc["connections"]
    assert isinstance(connections, dict) and connections["intacct"]["state"] == "ok"
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0, demo.output


def test_demo_refuses_a_port_in_use(demo_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "daemon.cli", "demo", "--listen", f"127.0.0.1:{port}"],
            cwd=REPO, env=demo_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1, result
    assert f"127.0.0.1:{port}" in result.stderr and "--listen" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing left behind
