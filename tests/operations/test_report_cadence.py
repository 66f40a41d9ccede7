"""The accountants' report cadence against a real SMTP server (aiosmtpd), across daemon restarts.

`report.send: on-change` mails when the set of open exceptions changes (new, or resolved), and only
then: one orphan project in Intacct (never deleted automatically) gives one email, not one per run.
What was last sent is remembered in the database, so a restarted daemon stays quiet too. With
`report.daily_at`, one digest a day goes out even when nothing changed, and a restart the same day
does not send a second one.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.acceptance.harness import Daemon, Stack, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


def _config(stack: Stack, port: int, **report: Any) -> dict[str, Any]:
    config = stack.config(reconcile={"interval": "2s"}, report={
        "send": "on-change", **report,
        "email": {"to": ["books@example.com"], "from": "sync@example.com", "smtp_host": "127.0.0.1",
                  "smtp_port": port, "tls": "none"}})
    config["http"]["listen"] = f"127.0.0.1:{free_port()}"
    return config


async def _latest(daemon: Daemon) -> dict[str, Any] | None:
    code, body = await daemon.http.status_and_json("GET", "/v1/reconcile/latest")
    return body if code == 200 else None


async def _runs(daemon: Daemon, count: int, after: int = 0) -> dict[str, Any]:
    """Wait until `count` runs finished after run id `after`; the last one."""
    async def done() -> dict[str, Any] | None:
        latest = await _latest(daemon)
        return latest if latest and latest["status"] == "done" and latest["id"] >= after + count else None

    result: dict[str, Any] = await wait_until(done, 60, f"{count} reconciliation runs after #{after}", interval=0.2)
    return result


def _csv_rows(message: EmailMessage) -> list[str]:
    [attachment] = list(message.iter_attachments())
    raw = attachment.get_payload(decode=True)
    assert isinstance(raw, bytes) and raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark
    return raw.decode("utf-8-sig").splitlines()[1:]


async def test_on_change_and_daily_digest_across_restarts(stack: Stack, inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    await stack.ia.call("POST", "/_sim/projects", {"PROJECTID": "J-990001", "NAME": "Left behind"})

    # One orphan, many runs: one email.
    daemon = await stack.start_daemon(_config(stack, port), name="first")
    first = await _runs(daemon, 1)
    await wait_until(lambda: _count(box, 1), 30, "the first report")
    last = await _runs(daemon, 3, after=first["id"])
    assert len(box.messages) == 1
    assert last["report"]["sent_at"] is None and "unchanged since the last report" in last["report"]["error"]
    [message] = box.messages
    assert message["Subject"] == "[st-intacct-sync] Reconciliation 1234567: 1 exception"
    assert message["Auto-Submitted"] == "auto-generated" and message["X-Auto-Response-Suppress"] == "All"
    assert [row.split(",")[0] for row in _csv_rows(message)] == ["orphan_in_intacct"]
    assert daemon.proc.stop(60) == 0

    # Restarted: it remembers what it sent, and stays quiet.
    daemon = await stack.start_daemon(_config(stack, port), name="second")
    await _runs(daemon, 3, after=last["id"])
    assert len(box.messages) == 1

    # Something new: one email listing both.
    await stack.ia.call("POST", "/_sim/projects", {"PROJECTID": "J-990002", "NAME": "Also left behind"})
    await wait_until(lambda: _count(box, 2), 30, "the report of the new exception")
    assert box.messages[1]["Subject"] == "[st-intacct-sync] Reconciliation 1234567: 2 exceptions"
    assert len(_csv_rows(box.messages[1])) == 2
    latest = await _runs(daemon, 2, after=(await _latest(daemon) or {"id": 0})["id"])
    assert len(box.messages) == 2
    assert daemon.proc.stop(60) == 0

    # A daily digest at 00:00 UTC (always past): one today, even though nothing changed...
    daemon = await stack.start_daemon(_config(stack, port, daily_at="00:00"), name="third")
    await wait_until(lambda: _count(box, 3), 30, "the daily digest")
    assert len(_csv_rows(box.messages[2])) == 2
    latest = await _runs(daemon, 2, after=latest["id"])
    assert daemon.proc.stop(60) == 0
    # ...and not a second one after a restart the same day.
    daemon = await stack.start_daemon(_config(stack, port, daily_at="00:00"), name="fourth")
    latest = await _runs(daemon, 3, after=latest["id"])
    assert len(box.messages) == 3

    # Everything resolved: that is a change too, and the accountants hear of it.
    for project in ("J-990001", "J-990002"):
        await stack.ia.call("DELETE", f"/_sim/projects/{project}", ok=(204,))
    await wait_until(lambda: _count(box, 4), 30, "the all-clear")
    assert box.messages[3]["Subject"] == "[st-intacct-sync] Reconciliation 1234567: 0 exceptions"
    assert _csv_rows(box.messages[3]) == []
    await _runs(daemon, 2, after=(await _latest(daemon) or {"id": 0})["id"])
    assert len(box.messages) == 4
    assert daemon.proc.stop(60) == 0


async def _count(box: Inbox, n: int) -> bool:
    return len(box.messages) >= n
