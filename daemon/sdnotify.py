"""systemd's notify protocol: a few datagrams on $NOTIFY_SOCKET, nothing when it is unset.

Written out rather than taken from a library because it is a dozen lines and the daemon must not
depend on libsystemd being present (containers, macOS development machines).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

from daemon import logs

log = logs.get("st_intacct_sync.sdnotify")

SEND_TIMEOUT = 2.0  # seconds: a busy service manager may delay a datagram, never stall the event loop


class Notifier:
    """Sends READY/RELOADING/STOPPING/WATCHDOG/STATUS to systemd when run under Type=notify."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        watchdog_usec = os.environ.get("WATCHDOG_USEC", "")
        watchdog_pid = os.environ.get("WATCHDOG_PID")
        self.watchdog_interval: float | None = None
        self._failed = False
        # One socket for the process's life: opened at once, so that a daemon whose descriptors run out
        # (EMFILE) can still tell systemd it is alive instead of being killed by the watchdog.
        self._socket: socket.socket | None = None
        if self.address:
            with contextlib.suppress(OSError):  # retried at the first send
                self._open()
        # As sd_watchdog_enabled(3): a value that is not a positive integer, or meant for another
        # process (WATCHDOG_PID), leaves the watchdog off rather than stopping the daemon.
        if watchdog_usec.isdigit() and int(watchdog_usec) > 0 and watchdog_pid in (None, "", str(os.getpid())):
            # Half the timeout, as sd_watchdog_enabled(3) recommends.
            self.watchdog_interval = int(watchdog_usec) / 1_000_000 / 2

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        """Send one notification (fields joined by newlines); False when not under systemd or not sent.

        Like sd_notify(3), a failure is reported, never raised: the daemon must not stop (or skip its
        drain) because the service manager went away or the variable points nowhere.
        """
        if not self.address:
            return False
        address = self.address
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        try:
            sock = self._socket or self._open()
            # sendto, not connect: a datagram finds the socket even after systemd re-created it.
            sock.sendto("\n".join(fields).encode(), address)
        except (OSError, ValueError) as exc:  # ValueError: a NUL inside a path
            if not self._failed:  # once: a watchdog every few seconds must not flood the log
                log.warning("sd_notify_failed", socket=self.address, error=f"{type(exc).__name__}: {exc}")
            self._failed = True
            return False
        self._failed = False
        return True

    def _open(self) -> socket.socket:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except OSError:
            self._socket = None
            raise
        sock.settimeout(SEND_TIMEOUT)
        self._socket = sock
        return sock

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __del__(self) -> None:
        # The socket lives as long as the notifier; closed here so it never outlives it unclosed.
        self.close()

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={' '.join(status.splitlines())}"] if status else []))

    def reloading(self) -> bool:
        # systemd ≥ 253 (Type=notify-reload) wants the monotonic time of the reload request.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        # One line: a newline would start another field of the message.
        return self.send(f"STATUS={' '.join(text.splitlines())}")
