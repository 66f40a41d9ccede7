"""Journal priorities and the systemd status line, read from what the daemon really emits.

Under systemd, stdout is a stream to journald and $JOURNAL_STREAM names its device:inode; a line
starting `<N>` gets priority N (sd-daemon(3)), so `journalctl -p warning` shows the warnings and
errors. The test gives the daemon a file for stdout and that file's device:inode in $JOURNAL_STREAM,
as systemd would, in both output formats.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.acceptance.harness import INTACCT_CREDS, Stack, wait_until
from tests.acceptance.test_sdnotify import ServiceManager, service_manager, socket_dir  # noqa: F401 (fixtures)
from tests.plugins.private_postgres import PrivatePostgres

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LINE = re.compile(r"^<([0-7])>(.*)$")


def journal_env(log: Path) -> dict[str, str]:
    log.touch()
    st = os.stat(log)
    return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


@pytest.mark.parametrize("fmt", ["json", "console"])
async def test_each_line_carries_its_priority(stack: Stack, fmt: str) -> None:
    config = stack.config(logging={"format": fmt, "level": "info"}, intacct={"probe_interval": "1s"})
    daemon = await stack.start_daemon(config, env=journal_env(stack.tmp / "daemon.log"))
    # A warning: the Intacct password is refused. An error: a reload with a broken file.
    await stack.ia.credentials(**{**INTACCT_CREDS, "user_password": "rotated-pw-31"})
    customer = await stack.st.customer("Journal Ltd")
    await stack.st.job(customer["id"])

    async def in_error() -> bool:
        return (await daemon.status())["connections"]["intacct"]["state"] == "error"

    await wait_until(in_error, 30, "the Intacct connection in error")
    daemon.config_path.write_text("database: [unclosed\n")
    daemon.hup()
    await wait_until(lambda: _logged(daemon.proc.output(), "reload_rejected"), 20, "reload_rejected logged")
    assert daemon.proc.stop(60) == 0

    lines = [line for line in daemon.proc.output().splitlines() if line.strip()]
    assert lines and all(LINE.match(line) for line in lines), [x for x in lines if not LINE.match(x)][:5]
    by_event: dict[str, set[int]] = {}
    for line in lines:
        match = LINE.match(line)
        assert match is not None
        priority, text = int(match[1]), match[2]
        if fmt == "json":
            event = json.loads(text)
            level, name = event["level"], event["event"]
            assert priority == {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}[level], line
        else:
            found = re.search(r"\[(\w+)\s*\]\s+(\w+)", text)
            if found is None:  # a continuation line (traceback): its record's priority, checked by neighbours
                continue
            level, name = found[1], found[2]
        by_event.setdefault(name, set()).add(priority)
    assert by_event["started"] == {6}
    assert 4 in by_event["connection_state"]  # intacct error: a warning
    assert by_event["reload_rejected"] == {3}


async def _logged(output: str, event: str) -> bool:
    return event in output


def test_no_prefix_off_the_journal(tmp_path: Path) -> None:
    """A terminal, a file, a pipe: no $JOURNAL_STREAM (or another stream's), no prefix."""
    import logging

    from daemon import logs

    out = tmp_path / "out.log"
    with out.open("w") as stream:
        os.environ.pop("JOURNAL_STREAM", None)
        logs.configure(fmt="json", stream=stream)
        logging.getLogger("t").warning("plain")
        assert not logs.journal_stream(stream)
    assert out.read_text().startswith("{")


async def test_status_line_follows_every_connection(tmp_path: Path, private_pg: tuple[PrivatePostgres, str],
                                                    session: object, socket_dir: Path,  # noqa: F811
                                                    service_manager: tuple[str, ServiceManager],  # noqa: F811
                                                    ) -> None:
    """STATUS= changes with Intacct, ServiceTitan and the database, each way."""
    pg, dsn = private_pg
    path, systemd = service_manager
    stack = Stack(tmp_path, dsn, session)  # type: ignore[arg-type]
    try:
        await stack.start_simulators()
        config = stack.config(intacct={"probe_interval": "1s"}, servicetitan={"poll_interval": "1s"})
        daemon = await stack.start_daemon(config, env={"NOTIFY_SOCKET": path})
        ready = await systemd.wait_for("READY=1")
        assert "intacct ok" in ready.fields["STATUS"] and "database ok" in ready.fields["STATUS"]

        async def status_with(text: str, after: float) -> str:
            async def seen() -> str | None:
                found = [m.fields["STATUS"] for m in systemd.messages if m.at > after and text in m.fields.get(
                    "STATUS", "")]
                return found[0] if found else None

            result: str = await wait_until(seen, 30, f"STATUS= with {text!r}", interval=0.05)
            return result

        mark = time.monotonic()
        await stack.ia.credentials(**{**INTACCT_CREDS, "user_password": "rotated-pw-32"})
        customer = await stack.st.customer("Status Line Ltd")
        await stack.st.job(customer["id"])
        await status_with("intacct error", mark)
        mark = time.monotonic()
        await stack.ia.credentials(**INTACCT_CREDS)
        await status_with("intacct ok", mark)

        mark = time.monotonic()
        await stack.st.call("PUT", "/_sim/credentials", {"client_secret": "rotated-st-secret-33"})
        await stack.st.call("POST", "/_sim/expire-tokens")
        await status_with("servicetitan error", mark)

        mark = time.monotonic()
        await pg.stop()
        await status_with("database error", mark)
        mark = time.monotonic()
        await pg.start()
        await status_with("database ok", mark)
        assert daemon.proc.proc.poll() is None
    finally:
        await stack.close()
