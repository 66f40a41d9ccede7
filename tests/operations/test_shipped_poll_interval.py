"""The shipped poll_interval: a new job reaches Intacct within 3 s, and an idle daemon asks ServiceTitan
less than once a second (bench/latency.py measures the percentiles under load; this is the guard)."""

from __future__ import annotations

import asyncio
import time

import pytest

from daemon.config.sections import DEFAULT_POLL_INTERVAL
from tests.acceptance.harness import Stack, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
IDLE_S = 11.0


def _api_requests(stats: dict[str, object]) -> int:
    counts = stats["requests"]
    assert isinstance(counts, dict)
    return sum(int(n) for route, n in counts.items() if not str(route).startswith("sim."))


async def test_latency_and_idle_rate_at_the_shipped_default(stack: Stack) -> None:
    assert DEFAULT_POLL_INTERVAL.total_seconds() <= 2.5
    config = stack.config()
    del config["servicetitan"]["poll_interval"]  # the shipped default, not the harness's 1 s
    daemon = await stack.start_daemon(config)
    customer = await stack.st.customer("Cadence Ltd")
    await asyncio.sleep(3)  # the first polls and the customer cache settle
    took = []
    for _ in range(3):
        started = time.monotonic()
        job = await stack.st.job(customer["id"])
        await wait_until(lambda j=job: _in_intacct(stack, f"J-{j['jobNumber']}"), 10, "the job in Intacct",
                         interval=0.05)
        took.append(time.monotonic() - started)
    assert max(took) <= 3.0, took

    before = _api_requests(await stack.st.call("GET", "/_sim/stats"))
    started = time.monotonic()
    await asyncio.sleep(IDLE_S)
    rate = (_api_requests(await stack.st.call("GET", "/_sim/stats")) - before) / (time.monotonic() - started)
    print(f"change → Intacct {', '.join(f'{t:.2f}' for t in took)} s; idle {rate:.2f} requests/s to ServiceTitan")
    assert rate <= 1.0, rate
    assert daemon.proc.stop(60) == 0


async def _in_intacct(stack: Stack, project_id: str) -> bool:
    code, _ = await stack.ia.status_and_json("GET", f"/_sim/projects/{project_id}")
    return code == 200
