"""The queue page's content, in process against the real PostgreSQL: the queue's filters, search and
paging, a record with its parent, runs with their exceptions and CSV, the chart, the time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.reconcile.report import BOM, csv_name, render_csv
from daemon.store import Category, Finding, RecordKey, RecordUpsert, Store
from statemachine import FieldMapping, JobFacts, ProjectFacts, Settings, desired_for_job
from tests.integration.ui_support import (
    fail,
    job,
    make_config,
    project,
    sync,
)

# ---- the queue: filters, search, paging -----------------------------------------------------------


async def test_queue_filters_searches_and_pages_through_everything(pages: Any, store: Store) -> None:
    client, _ = await pages()
    names = ["Smith & Sons", "Jones Plumbing", "García Heating", "Smithfield Farm"]
    await store.upsert([job(1000 + i, names[i % 4], number=str(24000 + i)) for i in range(60)]
                       + [project(5000 + i, f"Project {names[i % 4]}") for i in range(10)])
    for i in range(0, 60, 10):
        await fail(store, RecordKey("job", 1000 + i))
    await sync(store, RecordKey("project", 5001))

    async def rows(query: str) -> list[str]:
        html = await (await client.get("/queue" + query)).text()
        return re.findall(r'<a href="/queue/(job|project)/(\d+)">', html)

    failed = await rows("?state=failed")
    assert sorted(int(i) for _, i in failed) == [1000 + i for i in range(0, 60, 10)]
    assert await rows("?state=synced") == [("project", "5001")]
    assert {k for k, _ in await rows("?kind=project")} == {"project"}
    smith = await rows("?q=smith")  # word prefixes: Smith & Sons and Smithfield
    assert len(smith) == 30 + 5
    assert len(await rows("?q=Smith+%26+Sons")) == 15 + 3
    assert await rows("?q=24007") == [("job", "1007")]
    assert len(await rows("?q=2400")) == 10  # 24000..24009
    assert len(await rows("?q=garc%C3%ADa&kind=job")) == 15
    assert await rows("?q=%3C%3E%22") == []  # no words at all: nothing matches, nothing breaks

    seen: list[tuple[str, str]] = []
    url = "/queue"
    pages_read = 0
    while url:
        html = await (await client.get(url)).text()
        seen += re.findall(r'<a href="/queue/(job|project)/(\d+)">', html)
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found[1].replace("&amp;", "&") if found else ""
        pages_read += 1
    assert pages_read == 2 and len(seen) == 70 and len(set(seen)) == 70


async def test_record_page_shows_fields_history_and_the_parent(pages: Any, store: Store) -> None:
    client, _ = await pages()
    parent = project(600, "Riverside Office")
    facts = JobFacts(601, "24601", 600, 7, "Acme")
    child = RecordUpsert("job", 601, "24601", None, 7, "Acme", 600, True, None, None,
                         desired_for_job(facts, ProjectFacts(600, "P600", "Riverside Office", 7, "Acme"),
                                         Settings(), FieldMapping()))
    await store.upsert([parent, child])
    await fail(store, RecordKey("project", 600))
    html = await (await client.get("/queue/job/601")).text()
    assert 'href="/queue/project/600"' in html and "Riverside Office" in html
    assert "BL01001973" in html  # the parent's own error, in Intacct's words
    assert "Intacct refused the parent, so this job cannot go to Intacct before it" in html
    await store.retry_failed([RecordKey("project", 600)])
    html = await (await client.get("/queue/job/601")).text()
    assert "This job waits until its parent is in Intacct." in html and "Intacct refused the parent" not in html
    assert html.count("new in ServiceTitan") == 1


# ---- reconciliation runs and their CSV -------------------------------------------------------------


async def test_run_csv_is_the_report_attachment(pages: Any, store: Store) -> None:
    client, _ = await pages()
    run = await store.runs.start("http", "activated", True, None)
    findings = [
        Finding(Category.MISSING, "job", 5, "24005", "=HYPERLINK(\"x\")", "J-24005", None, "not in Intacct",
                "queued", False, datetime(2026, 11, 1, tzinfo=UTC)),
        Finding(Category.ORPHAN, None, None, None, None, "J-999", "Old <b>", "unknown to ServiceTitan",
                "reported", True, datetime(2026, 11, 2, tzinfo=UTC)),
    ]
    await store.runs.finish(run.id, status="done", counts={"missing_in_intacct": 1, "orphan_in_intacct": 1},
                                     exceptions=2, timings={}, error=None, summary={"remaining": 1},
                                     findings=findings)
    listing = await (await client.get("/reconciliation")).text()
    assert f'href="/reconciliation/{run.id}"' in listing and f'href="/reconciliation/{run.id}/csv"' in listing
    page = await (await client.get(f"/reconciliation/{run.id}")).text()
    assert "2 exceptions; 1 needs someone to look at it." in page and "Old &lt;b&gt;" in page
    resp = await client.get(f"/reconciliation/{run.id}/csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    stored = await store.runs.exceptions(run.id, 100)
    expected, rows = render_csv(stored)
    assert rows == 2 and (await resp.read()) == (BOM + expected).encode("utf-8")  # Excel reads it as UTF-8
    assert f'filename="{csv_name(store.tenant_id, run.started_at)}"' in resp.headers["Content-Disposition"]


async def test_overview_chart_counts_synced_and_failed_per_hour(pages: Any, store: Store) -> None:
    client, _ = await pages()
    await store.upsert([job(70 + i, "c") for i in range(5)])
    for i in range(3):
        await sync(store, RecordKey("job", 70 + i))
    await fail(store, RecordKey("job", 73))
    now = datetime.now(UTC)
    hours = await store.pages.outcomes_per_hour(now - timedelta(hours=1))
    hour = now.replace(minute=0, second=0, microsecond=0)
    assert hours == {(hour, "synced"): 3, (hour, "failed"): 1}
    html = await (await client.get("/")).text()
    assert "Last 24 hours: 3 synced, 1 failed" in html
    assert len(re.findall(r'<rect class="bar bar-synced"', html)) == 1


async def test_a_large_run_pages_its_exceptions(pages: Any, store: Store) -> None:
    client, _ = await pages()
    run = await store.runs.start("schedule", "all", False, None)
    findings = [Finding(Category.NAME, "job", 1000 + i, str(1000 + i), f"Name {i}", f"J-{1000 + i}", f"Other {i}",
                        "named differently", "none", True, None) for i in range(250)]
    await store.runs.finish(run.id, status="done", counts={"name_mismatch": 250}, exceptions=250,
                                     timings={}, error=None, summary={"remaining": 250}, findings=findings)
    first = await (await client.get(f"/reconciliation/{run.id}")).text()
    assert "Exceptions 1–100 of 250" in first and first.count("named differently") == 100
    following = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert following and following[1] == f"/reconciliation/{run.id}?after=100"
    second = await (await client.get(following[1])).text()
    assert "Exceptions 101–200 of 250" in second and second.count("named differently") == 100
    last = await (await client.get(f"/reconciliation/{run.id}?after=200")).text()
    assert "Exceptions 201–250 of 250" in last and last.count("named differently") == 50
    assert 'rel="next"' not in last and "Other 249" in last
    assert (await client.get(f"/reconciliation/{run.id}?after=x")).status == 400


async def test_times_are_shown_in_report_timezone(pages: Any, store: Store) -> None:
    client, _ = await pages(make_config(timezone="America/New_York"))
    await store.upsert([job(81, "Zoned")])
    html = await (await client.get("/queue/job/81")).text()
    created = (await store.history(RecordKey("job", 81)))[0].at
    local = created.astimezone(ZoneInfo("America/New_York"))
    assert f"{local:%d %b %Y %H:%M:%S} {local.tzname()}".lstrip("0") in html
    assert "times in America/New_York" in html
    utc_client, _ = await pages()
    utc_html = await (await utc_client.get("/queue/job/81")).text()
    assert f"{created.astimezone(UTC):%H:%M:%S} UTC" in utc_html and "times in UTC" in utc_html
