"""/metrics through prometheus_client's own exposition, with what the shipped alert rules need.

Every metric that prometheus/alerts.yml names is exported by a running daemon, with the process
collectors (memory, CPU, file descriptors) and build_info; the content type is the exposition's own.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.harness import REPO, Stack

RULES = REPO / "prometheus" / "alerts.yml"


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


async def test_metrics_for_alerts(stack: Stack, tmp_path: Path) -> None:
    daemon = await stack.start_daemon(stack.config())
    customer = await stack.st.customer("Metrics Ltd")
    job = await stack.st.job(customer["id"])
    status, _ = await daemon.ensure(jobs=[job["id"]])
    assert status == 200
    async with stack.session.get(f"{daemon.http.base}/metrics") as resp:
        assert resp.status == 200
        content_type = resp.headers["Content-Type"]
        text = await resp.text()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    samples = _families(text)
    # The process collectors and the build.
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                 "process_start_time_seconds", "python_info"):
        assert name in samples, name
    [(labels, value)] = samples["st_intacct_sync_build_info"]
    assert value == 1 and labels["version"] and labels["python"]
    # What the alerts read, and what operators graph.
    assert samples["st_intacct_sync_database_up"] == [({}, 1.0)]
    assert samples["st_intacct_sync_leader"] == [({}, 1.0)]
    assert samples["st_intacct_sync_oldest_pending_age_seconds"][0][1] >= 0
    assert samples["st_intacct_sync_reconcile_interval_seconds"] == [({}, 3600.0)]
    assert {labels["system"] for labels, _ in samples["st_intacct_sync_connection_up"]} == {"intacct", "servicetitan"}
    assert {labels["result"] for labels, _ in samples["st_intacct_sync_emails_total"]} == {"sent", "failed"}
    assert {labels["class"] for labels, _ in samples["st_intacct_sync_reconcile_exceptions"]} >= {
        "missing_in_intacct", "orphan_in_intacct", "failed"}
    assert samples["st_intacct_sync_ensure_seconds_count"] == [({}, 1.0)]
    named = set(re.findall(r"\b((?:st_intacct_sync|process)_\w+)", RULES.read_text()))
    assert named and named <= set(samples), named - set(samples)
    # OpenMetrics, when the scraper asks for it.
    async with stack.session.get(f"{daemon.http.base}/metrics",
                                 headers={"Accept": "application/openmetrics-text; version=1.0.0"}) as resp:
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await resp.text()).rstrip().endswith("# EOF")
