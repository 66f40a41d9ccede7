"""kill -9 of the daemon at random moments of a 2,000-job sync, restarted each time.

Intacct answers slowly (0.1 s + 0.002 s per function) and requests carry few functions, so that the
sync lasts long enough for every kill to land while requests are in flight. Nothing may be lost,
nothing created twice, and no record may stay `syncing` once the last daemon has finished.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.acceptance.harness import BOTH_APIS, Stack
from tests.resilience.support import (
    Figures,
    daemon_alive,
    db_figures,
    fault_figures,
    intacct_figures,
    kill9,
    states,
    wait_all_synced,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

JOBS = 2000
PROJECTS = 20  # half of the jobs roll up under a project: parents must land before their jobs
KILLS = 6


@BOTH_APIS
async def test_kill9_during_a_2000_job_sync_loses_and_duplicates_nothing(stack: Stack) -> None:
    figures = Figures("kill9" if stack.intacct_api == "xml" else "kill9_rest")
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    rng.seed(seed)
    await stack.ia.faults(latency=0.1, latency_per_function=0.002)
    config = stack.config(
        intacct={"max_functions_per_request": 5},
        sync={"backoff_initial": "0.2s", "backoff_max": "2s", "lease": "4s"},
    )
    # The first start stores the activation time; the jobs come after it.
    daemon = await stack.start_daemon(config, name="daemon-0")
    customer = await stack.st.customer("Kill Nine & Sons")
    created = await stack.st.bulk({
        "projects": [{"customerId": customer["id"], "name": f"Project {i}"} for i in range(PROJECTS)],
    })
    first_project = created["projects"]["first_id"]
    project_ids = list(range(first_project, first_project + PROJECTS))
    created = await stack.st.bulk({"jobs": [
        {"customerId": customer["id"], **({"projectId": project_ids[i % PROJECTS]} if i % 2 else {})}
        for i in range(JOBS)
    ]})
    first_job = created["jobs"]["first_id"]
    job_ids = list(range(first_job, first_job + JOBS))
    expected = {f"J-{j}" for j in job_ids} | {f"P-{p}" for p in project_ids}
    total = JOBS + PROJECTS

    kills: list[dict[str, int]] = []
    for i in range(KILLS):
        # Random moments: soon after a start (claims, first requests) up to well into the run.
        await asyncio.sleep(rng.uniform(0.3, 4.0))
        in_flight = (await stack.ia.stats())["in_flight"]
        synced = (await states(stack.dsn)).get("synced", 0)
        kill9(daemon)
        kills.append({"synced_before": synced, "intacct_requests_in_flight": in_flight})
        daemon = await stack.start_daemon(config, name=f"daemon-{i + 1}")

    # The last daemon finishes the work: leases of the killed ones expire and are read before any create.
    await wait_all_synced(stack.dsn, total, 240, f"all {total} records synced after {KILLS} kills")
    db = await db_figures(stack.dsn)
    ia = await intacct_figures(stack.ia, expected)
    stats = await stack.ia.stats()
    alive = await daemon_alive(daemon)
    mid_sync = sum(1 for k in kills if k["synced_before"] < total)
    figures.update(
        seed=seed, kills=len(kills), kills_mid_sync=mid_sync,
        kills_with_requests_in_flight=sum(1 for k in kills if k["intacct_requests_in_flight"] > 0),
        kill_points=kills, records=total, **db.public(), **ia.public(), intacct=fault_figures(stats),
    )
    figures.done()

    assert len(kills) >= 5 and mid_sync >= 5, kills
    assert db.states == {"synced": total}, db.not_synced
    assert ia.duplicates == 0 and not ia.lost and not ia.extra, (ia.lost[:10], ia.extra[:10])
    assert ia.count == total
    for p in project_ids:
        assert ia.projects[f"P-{p}"]["NAME"] == f"Project {project_ids.index(p)}"
    for i, j in enumerate(job_ids):
        parent = f"P-{project_ids[i % PROJECTS]}" if i % 2 else None
        assert ia.projects[f"J-{j}"]["PARENTID"] == parent
    assert db.max_attempts <= 10
    assert alive
    assert daemon.proc.stop(60) == 0
    assert (await states(stack.dsn)) == {"synced": total}  # a graceful stop leaves nothing behind
