"""Every Intacct fault at once: 5xx, lost answers, timeouts, the concurrency limit, sessions
that die without warning. All records must end synced, none created twice, with bounded attempts, and
the connection must not be left in `error`.
"""

from __future__ import annotations

import pytest

from tests.acceptance.harness import BOTH_APIS, Stack, wait_until
from tests.resilience.support import (
    Figures,
    connection_state,
    daemon_alive,
    db_figures,
    fault_figures,
    intacct_figures,
    wait_all_synced,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

JOBS = 400
PROJECTS = 10
MAX_ATTEMPTS = 30


@BOTH_APIS
async def test_all_intacct_faults_at_once(stack: Stack) -> None:
    rest = stack.intacct_api == "rest"
    figures = Figures("intacct_faults_rest" if rest else "intacct_faults")
    if rest:
        # The REST counterpart of dying sessions: tokens that expire within seconds, and tokens refused
        # without warning (revoked), which the client mints again and resends once.
        await stack.ia.call("PUT", "/_sim/rest/options", {"token_ttl": 4})
    await stack.ia.faults(
        http_401_rate=0.03 if rest else 0.0,
        seed=20261125,
        error_rate=0.2,  # HTTP 500/502/503 before anything is applied
        lost_answer_rate=0.05,  # applied, then 502
        timeout_rate=0.1, hang_seconds=2.5,  # hangs past the daemon's 2 s request timeout
        # The daemon allows itself 3 requests, the company 2: a third waits 0.5 s for a slot, then fails
        # with "too many operations" (mostly while hung requests hold the company's slots).
        # Over REST fewer requests carry the same records (no logins), so fewer hang: a shorter wait keeps
        # the limit in play there too.
        max_concurrent=2, concurrency_wait=0.05 if rest else 0.5,
        session_max_age=5.0,  # sessions die without warning ("every 30 s", sped up)
        latency=0.1, latency_per_function=0.002,
    )
    config = stack.config(
        intacct={"max_functions_per_request": 8, "max_concurrent_requests": 3, "request_timeout": "2s"},
        sync={"workers": 4, "max_attempts": MAX_ATTEMPTS, "backoff_initial": "0.2s", "backoff_max": "4s",
              "lease": "10s"},
    )
    daemon = await stack.start_daemon(config)
    customer = await stack.st.customer("Faulty <Intacct> & Co")
    created = await stack.st.bulk({"projects": [{"customerId": customer["id"], "name": f"P{i}"}
                                                for i in range(PROJECTS)]})
    project_ids = list(range(created["projects"]["first_id"], created["projects"]["first_id"] + PROJECTS))
    created = await stack.st.bulk({"jobs": [
        {"customerId": customer["id"], **({"projectId": project_ids[i % PROJECTS]} if i % 2 else {})}
        for i in range(JOBS)]})
    job_ids = list(range(created["jobs"]["first_id"], created["jobs"]["first_id"] + JOBS))
    expected = {f"J-{j}" for j in job_ids} | {f"P-{p}" for p in project_ids}
    total = JOBS + PROJECTS

    await wait_all_synced(stack.dsn, total, 200, f"{total} records synced through the faults")
    stats = await stack.ia.stats()
    rest_stats = await stack.ia.call("GET", "/_sim/rest/stats") if rest else {}
    # Faults off: the connection must come back to ok by itself, if a fault storm ever put it in error.
    await stack.ia.call("DELETE", "/_sim/faults")
    final_state = await wait_until(lambda: _ok(daemon), 30, "the Intacct connection ok")
    db = await db_figures(stack.dsn)
    ia = await intacct_figures(stack.ia, expected)
    faults = stats["faults"]
    figures.update(records=total, **db.public(), **ia.public(), intacct=fault_figures(stats),
                   connection_at_end=final_state, max_attempts_allowed=MAX_ATTEMPTS)
    figures.done()

    assert db.states == {"synced": total}, db.not_synced
    assert ia.duplicates == 0 and not ia.lost and not ia.extra
    assert db.max_attempts <= MAX_ATTEMPTS and db.max_retries < MAX_ATTEMPTS
    assert await daemon_alive(daemon)
    # Every kind of fault really happened.
    assert sum(v for k, v in faults.items() if k in ("http_500", "http_502", "http_503")) > 0, faults
    for kind in ("lost_answer", "timeout", "concurrency_limit", "http_401" if rest else "session_expired"):
        assert faults.get(kind, 0) > 0, (kind, faults)
    if rest:  # tokens were renewed (expiry, refusals); lost answers were replayed from the idempotency cache
        assert rest_stats["tokens_minted"] > 1, rest_stats
        assert rest_stats["replays_answered"] > 0, rest_stats
    assert daemon.proc.stop(60) == 0


async def _ok(daemon: object) -> str | None:
    state = await connection_state(daemon)  # type: ignore[arg-type]
    return state if state == "ok" else None
