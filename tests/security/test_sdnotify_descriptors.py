"""Finding 2 (the watchdog): sd_notify keeps one socket, so a daemon whose descriptors have run out can
still send WATCHDOG=1. Before, each notification opened a new socket: at EMFILE the watchdog pings
failed and systemd killed the daemon, again and again (a restart loop)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.acceptance.harness import REPO

SCRIPT = """
import os, resource, socket, sys
from daemon.sdnotify import Notifier

path = sys.argv[1]
receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
receiver.bind(path)
receiver.settimeout(5)
notifier = Notifier(path)
assert notifier.ready(), "READY=1 not sent"
assert receiver.recv(4096) == b"READY=1"
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
held = []
try:
    while True:
        held.append(open(os.devnull))
except OSError as exc:
    print("exhausted:", exc.strerror, len(held), "files held")
sent = [notifier.watchdog() for _ in range(5)]
received = [receiver.recv(4096) for _ in range(sum(sent))]
print("sent:", sent, "received:", received)
"""


def test_the_watchdog_is_sent_when_descriptors_have_run_out(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "notify.sock")], capture_output=True,
                            text=True, timeout=60, cwd=REPO)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert "exhausted: Too many open files" in result.stdout
    assert "sent: [True, True, True, True, True] received: [b'WATCHDOG=1'" in result.stdout
    assert result.stdout.count("b'WATCHDOG=1'") == 5
