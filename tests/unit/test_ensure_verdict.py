"""Export gating answers with a verdict; the HTTP layer alone turns it into a status code."""

from __future__ import annotations

from typing import Any

from daemon.config import parse_config
from daemon.http.app import ENSURE_STATUS
from daemon.store import RecordKey
from daemon.sync import ExportGate, Verdict


def test_every_verdict_has_its_documented_status() -> None:
    assert ENSURE_STATUS == {Verdict.SYNCED: 200, Verdict.NOT_FOUND: 404, Verdict.REFUSED: 409,
                             Verdict.ABSENT: 409, Verdict.DISABLED: 409, Verdict.UNAVAILABLE: 503}


async def test_disabled_projects_are_a_verdict_not_a_status() -> None:
    config = parse_config({
        "servicetitan": {"tenant_id": 42, "app_key": "ak", "client_id": "cid", "client_secret": "cs"},
        "intacct": {"sender_id": "sid", "sender_password": "sp", "company_id": "co", "user_id": "uid",
                    "user_password": "up"},
        "settings": {"enable_intacct_projects": False},
    }, "inline", {})
    unused: Any = None  # the master switch is read before anything else is touched
    gate = ExportGate(unused, unused, unused, unused, unused, unused, lambda: config)
    outcome = await gate.ensure([RecordKey("job", 7)], timeout=1)
    assert outcome.verdict is Verdict.DISABLED and not outcome.ok
    assert outcome.public()["ok"] is False and not hasattr(outcome, "status")
