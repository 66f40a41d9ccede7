"""Switching a running tenant from one Intacct API to the other, by reload and by restart, mid-sync:
nothing lost, nothing created twice, and each API really carried part of the work."""

from __future__ import annotations

import pytest

from tests.acceptance.harness import Stack, wait_until

pytestmark = pytest.mark.timeout(240)


async def _ids(stack: Stack) -> list[str]:
    return [p["PROJECTID"] for p in (await stack.ia.call("GET", "/_sim/projects"))["projects"]]


async def test_switching_api_by_reload_and_restart_loses_and_duplicates_nothing(stack: Stack) -> None:
    # Slow answers and some lost ones: the switch lands while requests are in flight and outcomes unknown.
    await stack.ia.faults(latency=0.15, latency_per_function=0.002, lost_answer_rate=0.1, seed=11)
    xml = stack.config(intacct={"max_functions_per_request": 5})
    rest = stack.config(intacct={**stack.intacct_credentials("rest"), "max_functions_per_request": 5})
    daemon = await stack.start_daemon(xml)
    customer = await stack.st.customer("Switch & Co")
    made = await stack.st.bulk({"projects": [{"customerId": customer["id"], "name": f"P{i}"} for i in range(6)]})
    projects = list(range(made["projects"]["first_id"], made["projects"]["first_id"] + 6))
    await stack.st.bulk({"jobs": [{"customerId": customer["id"], **({"projectId": projects[i % 6]} if i % 2 else {})}
                                  for i in range(150)]})
    await wait_until(lambda: _some(stack, 20), 60, "the first creates over XML")
    xml_sessions = (await stack.ia.stats())["session_requests"]
    assert xml_sessions > 0

    # 1. Reload to REST while the XML sync is under way.
    stack.write_config(rest, daemon.config_path.name)
    daemon.hup()
    await daemon.wait_queue(lambda q: q["synced"] == 156, 120, "156 synced after the switch to REST")
    ids = await _ids(stack)
    assert len(ids) == len(set(ids)) == 156
    rest_stats = await stack.ia.call("GET", "/_sim/rest/stats")
    assert rest_stats["tokens_minted"] >= 1 and rest_stats["requests"] > 0  # REST carried part of the work
    assert (await daemon.status())["connections"]["intacct"]["api"] == "rest"

    # 2. More work, then a restart back to XML in the middle of it.
    await stack.st.bulk({"jobs": [{"customerId": customer["id"], "projectId": projects[i % 6]} for i in range(100)]})
    await wait_until(lambda: _some(stack, 170), 60, "REST creates of the second batch")
    rest_requests = (await stack.ia.call("GET", "/_sim/rest/stats"))["requests"]
    assert daemon.proc.stop(60) == 0
    daemon = await stack.start_daemon(xml, name="daemon-xml-again")
    await daemon.wait_queue(lambda q: q["synced"] == 256, 120, "256 synced after the restart on XML")
    ids = await _ids(stack)
    assert len(ids) == len(set(ids)) == 256
    assert (await stack.ia.stats())["session_requests"] > xml_sessions  # XML took over again
    assert (await stack.ia.call("GET", "/_sim/rest/stats"))["requests"] >= rest_requests
    status = await daemon.status()
    assert status["queue"]["failed"] == 0 and status["connections"]["intacct"]["state"] == "ok"
    assert status["connections"]["intacct"]["api"] == "xml"
    assert daemon.proc.stop(60) == 0


async def _some(stack: Stack, n: int) -> bool:
    return await stack.ia.project_count() >= n
