"""Intacct refuses the password for a while: the connection goes to `error`, records wait in
`blocked-by-connection`, nothing but the probe reaches Intacct; once the password is fixed (config
rewritten + SIGHUP) everything resumes and syncs, none lost.

The password changes at run time, as when an administrator rotates it in Intacct: the simulator's
enforced credentials are replaced (`PUT /_sim/credentials`, which also drops every session), so the
daemon meets the error in the middle of its work.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.acceptance.harness import INTACCT_CREDS, Stack, wait_until
from tests.resilience.support import (
    Figures,
    connection_state,
    daemon_alive,
    db_figures,
    fault_figures,
    intacct_figures,
    wait_all_synced,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROTATED = "rotated-user-password-2"
PROBE_INTERVAL = 2.0
WINDOW = 3 * PROBE_INTERVAL


async def test_wrong_password_blocks_then_fixed_password_resumes(stack: Stack) -> None:
    figures = Figures("wrong_password")
    config = stack.config(intacct={"probe_interval": f"{PROBE_INTERVAL}s"})
    daemon = await stack.start_daemon(config)
    customer = await stack.st.customer("Rotation Ltd")
    before = [await stack.st.job(customer["id"]) for _ in range(10)]
    await wait_all_synced(stack.dsn, len(before), 60, "the first jobs synced")

    # The password is rotated in Intacct; the daemon still has the old one.
    await stack.ia.credentials(**{**INTACCT_CREDS, "user_password": ROTATED})
    first_wave = await stack.st.bulk({"jobs": [{"customerId": customer["id"]} for _ in range(15)]})
    await wait_until(lambda: _state_is(daemon, "error"), 30, "the Intacct connection in error")
    second_wave = await stack.st.bulk({"jobs": [{"customerId": customer["id"]} for _ in range(15)]})
    waiting = 30
    queue = await daemon.wait_queue(
        lambda q: q["blocked-by-connection"] == waiting and q["pending"] == 0 and q["syncing"] == 0,
        30, f"{waiting} records blocked-by-connection")

    # The window: only probes (refused logins) reach Intacct.
    stats_before = await stack.ia.stats()
    await asyncio.sleep(WINDOW)
    stats_after = await stack.ia.stats()
    requests = stats_after["requests"] - stats_before["requests"]
    refused = stats_after["auth_failures"] - stats_before["auth_failures"]
    functions_delta = {k: stats_after["functions"].get(k, 0) - stats_before["functions"].get(k, 0)
                       for k in set(stats_after["functions"]) | set(stats_before["functions"])}
    status = await daemon.status()
    readyz, ready_body = await daemon.http.status_and_json("GET", "/readyz")
    blocked_record = await daemon.record("job", second_wave["jobs"]["first_id"])
    assert blocked_record is not None

    # Fixed: the config gets the new password, and a reload probes at once.
    stack.write_config(stack.config(intacct={"probe_interval": f"{PROBE_INTERVAL}s", "user_password": ROTATED}),
                       "daemon.yaml")
    daemon.hup()
    total = len(before) + waiting
    await wait_all_synced(stack.dsn, total, 60, f"all {total} records synced after the fix")
    await wait_until(lambda: _state_is(daemon, "ok"), 30, "the Intacct connection ok")
    stats_end = await stack.ia.stats()
    db = await db_figures(stack.dsn)
    expected = {f"J-{j['jobNumber']}" for j in before}
    for wave in (first_wave, second_wave):
        expected |= {f"J-{i}" for i in range(wave["jobs"]["first_id"], wave["jobs"]["last_id"] + 1)}
    ia = await intacct_figures(stack.ia, expected)
    log = daemon.proc.output()
    figures.update(
        records=total, blocked=queue["blocked-by-connection"], window_s=WINDOW, window_requests=requests,
        window_refused_logins=refused, window_functions={k: v for k, v in functions_delta.items() if v},
        **db.public(), **ia.public(), intacct=fault_figures(stats_end), connection_at_end="ok")
    figures.done()

    assert status["connections"]["intacct"]["state"] == "error"
    assert "Sign-in information is incorrect" in json.dumps(status["connections"]["intacct"]["last_error"])
    assert readyz == 503 and "Intacct" in json.dumps(ready_body)
    assert blocked_record["state"] == "blocked-by-connection" and blocked_record["attempts"] == 0
    # Nothing attempted beyond the probe: no function ran, every request was a refused login, a few only.
    assert all(v == 0 for v in functions_delta.values()), functions_delta
    assert requests == refused and 1 <= requests <= WINDOW / PROBE_INTERVAL + 2, (requests, refused)
    assert db.states == {"synced": total}, db.not_synced
    assert ia.duplicates == 0 and not ia.lost and not ia.extra
    assert db.max_attempts <= 2  # a connection error refunds the attempt it interrupted
    for secret in (ROTATED, INTACCT_CREDS["user_password"], INTACCT_CREDS["sender_password"]):
        assert secret not in log and secret not in json.dumps(status)
    assert await daemon_alive(daemon)
    assert daemon.proc.stop(60) == 0


async def _state_is(daemon: object, state: str) -> bool:
    return await connection_state(daemon) == state  # type: ignore[arg-type]
