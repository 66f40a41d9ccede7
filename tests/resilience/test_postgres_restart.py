"""PostgreSQL restarted in the middle of a sync: the daemon reconnects by itself and finishes;
no record stays `syncing`, nothing is created twice.

The restarted server is a PRIVATE one this test starts (tests/plugins/private_postgres.py), never the
shared server other test runs use.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.acceptance.harness import Stack, wait_until
from tests.plugins.private_postgres import PrivatePostgres
from tests.resilience.support import (
    Figures,
    daemon_alive,
    db_figures,
    fault_figures,
    intacct_figures,
    states,
    wait_all_synced,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

JOBS = 600
PROJECTS = 10
RESTARTS = 2
DOWN_S = 4.0


async def test_postgres_restart_mid_sync(tmp_path: Path, private_pg: tuple[PrivatePostgres, str],
                                         session: aiohttp.ClientSession) -> None:
    pg, dsn = private_pg
    figures = Figures("postgres_restart")
    stack = Stack(tmp_path, dsn, session)
    try:
        await stack.start_simulators()
        await stack.ia.faults(latency=0.1, latency_per_function=0.002)
        config = stack.config(intacct={"max_functions_per_request": 10}, sync={"lease": "5s"})
        daemon = await stack.start_daemon(config)
        customer = await stack.st.customer("Restart & Co")
        created = await stack.st.bulk({"projects": [{"customerId": customer["id"], "name": f"P{i}"}
                                                    for i in range(PROJECTS)]})
        project_ids = list(range(created["projects"]["first_id"], created["projects"]["first_id"] + PROJECTS))
        created = await stack.st.bulk({"jobs": [
            {"customerId": customer["id"], **({"projectId": project_ids[i % PROJECTS]} if i % 2 else {})}
            for i in range(JOBS)]})
        job_ids = list(range(created["jobs"]["first_id"], created["jobs"]["first_id"] + JOBS))
        total = JOBS + PROJECTS

        restarts: list[dict[str, Any]] = []
        for n in range(RESTARTS):
            threshold = (n + 1) * total // (RESTARTS + 2)
            await wait_until(partial(_synced_at_least, dsn, threshold), 120, f"{threshold} records synced")
            synced = (await states(dsn)).get("synced", 0)
            in_flight = (await stack.ia.stats())["in_flight"]
            await pg.stop()
            await asyncio.sleep(DOWN_S / 2)
            alive = await daemon_alive(daemon)  # the event loop runs on without its database
            readyz, _ = await daemon.http.status_and_json("GET", "/readyz")
            await asyncio.sleep(DOWN_S / 2)
            new_dsn = await pg.start()
            assert new_dsn == dsn  # the same socket directory: the daemon's DSN still points at it
            restarts.append({"synced_before": synced, "intacct_requests_in_flight": in_flight,
                             "alive_while_down": alive, "readyz_while_down": readyz})

        await wait_all_synced(dsn, total, 180, f"all {total} records synced after {RESTARTS} restarts")
        db = await db_figures(dsn)
        expected = {f"J-{j}" for j in job_ids} | {f"P-{p}" for p in project_ids}
        ia = await intacct_figures(stack.ia, expected)
        stats = await stack.ia.stats()
        log = daemon.proc.output()
        figures.update(restarts=len(restarts), restart_points=restarts, down_s=DOWN_S, records=total,
                       **db.public(), **ia.public(), intacct=fault_figures(stats),
                       daemon_pid_unchanged=daemon.proc.proc.poll() is None,
                       results_not_stored=log.count('"results_not_stored"'),
                       leases_expired_events=log.count('"leases_expired"'))
        figures.done()

        assert daemon.proc.proc.poll() is None, daemon.proc.output()[-3000:]  # reconnected, never restarted
        assert all(r["alive_while_down"] and r["readyz_while_down"] == 503 for r in restarts), restarts
        assert db.states == {"synced": total}, db.not_synced
        assert ia.duplicates == 0 and not ia.lost and not ia.extra
        assert db.max_attempts <= 10
        assert await daemon_alive(daemon)
        readyz, body = await daemon.http.status_and_json("GET", "/readyz")
        assert readyz == 200, body
        assert daemon.proc.stop(60) == 0
        assert await states(dsn) == {"synced": total}
    finally:
        await stack.close()


async def _synced_at_least(dsn: str, n: int) -> bool:
    return (await states(dsn)).get("synced", 0) >= n
