"""The accountants' report: contract parts (subject, attachment name, CSV header), escaping, wording."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

from daemon.logs import Redactor
from daemon.reconcile import report
from daemon.store.reconcile_rows import Category, Finding

STARTED = datetime(2026, 11, 25, 16, 0, 5, tzinfo=UTC)


def finding(category: Category, st_id: int | None = 100001, **changes: object) -> Finding:
    values: dict[str, object] = {
        "category": category, "kind": "job" if st_id else None, "st_id": st_id,
        "st_number": "24001" if st_id else None, "st_name": "24001 Maria Gonzalez" if st_id else None,
        "intacct_project_id": "J-24001", "intacct_name": None, "detail": "Intacct has no project J-24001.",
        "action": "Queued to be created in Intacct.", "needs_attention": False, "since": STARTED,
    }
    values.update(changes)
    return Finding(**values)  # type: ignore[arg-type]


def data(findings: list[Finding], **changes: object) -> report.ReportData:
    values: dict[str, object] = {
        "tenant_id": 1234567, "run_id": 42, "trigger": "schedule", "scope": "activated", "repair": True,
        "period_start": datetime(2026, 11, 1, 9, 30, tzinfo=UTC), "started_at": STARTED,
        "finished_at": STARTED + timedelta(seconds=14), "counts": {"matched": 97_950, "missing_in_intacct": 1},
        "findings": findings, "outside_count": 20, "outside_oldest": datetime(2025, 1, 3, 8, tzinfo=UTC),
        "outside_newest": datetime(2026, 10, 30, tzinfo=UTC),
    }
    values.update(changes)
    return report.ReportData(**values)  # type: ignore[arg-type]


def test_subject_and_attachment_name_follow_the_contract() -> None:
    built = report.build(data([finding(Category.MISSING), finding(Category.ORPHAN, None)]))
    assert built.subject == "[st-intacct-sync] Reconciliation 1234567: 2 exceptions"
    assert built.csv_name == "reconciliation-1234567-20261125T1600Z.csv"
    local = STARTED.astimezone(timezone(timedelta(hours=-5)))
    assert report.csv_name(1234567, local) == "reconciliation-1234567-20261125T1600Z.csv"  # always UTC


def test_csv_has_the_exact_header_and_one_row_per_exception_in_report_order() -> None:
    findings = [finding(Category.NAME, 5, intacct_name="Old", detail="Name in Intacct is “Old”; …"),
                finding(Category.FAILED, 6, needs_attention=True), finding(Category.ORPHAN, None)]
    built = report.build(data(findings))
    # UTF-8 with a byte-order mark, so that Excel reads it as UTF-8; the header line unchanged after it.
    assert built.csv_text.startswith(report.BOM) and report.BOM == "\ufeff"
    csv_text = built.csv_text.removeprefix(report.BOM)
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert csv_text.splitlines()[0] == ("class,kind,servicetitan_id,servicetitan_number,servicetitan_name,"
                                              "intacct_project_id,intacct_name,detail,action")
    assert [r[0] for r in rows[1:]] == ["failed", "name_mismatch", "orphan_in_intacct"]
    assert rows[2][:7] == ["name_mismatch", "job", "5", "24001", "24001 Maria Gonzalez", "J-24001", "Old"]
    assert rows[3][1:4] == ["", "", ""]  # an orphan has no ServiceTitan side
    assert built.csv_rows == 3


def test_csv_cells_cannot_run_as_formulas() -> None:
    hostile = finding(Category.NAME, 7, st_name="=HYPERLINK(\"http://evil\")", intacct_name="+1+1",
                      detail="-2", action="@SUM(A1)", st_number="\tx")
    rows = list(csv.reader(io.StringIO(report.build(data([hostile])).csv_text.removeprefix(report.BOM))))
    assert rows[1][4] == "'=HYPERLINK(\"http://evil\")" and rows[1][6] == "'+1+1"
    assert rows[1][7] == "'-2" and rows[1][8] == "'@SUM(A1)" and rows[1][3] == "'\tx"
    assert report.safe_cell("J-1") == "J-1" and report.safe_cell(None) == ""


def test_html_escapes_every_text() -> None:
    hostile = finding(Category.NAME, 8, st_name="<script>alert(1)</script>", intacct_name="A & B \"q\"")
    html = report.build(data([hostile])).html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "A &amp; B &quot;q&quot;" in html


def test_text_reads_scope_and_period_first_then_counts_then_exceptions() -> None:
    findings = [finding(Category.MISSING, since=STARTED - timedelta(days=3)),
                finding(Category.FAILED, 9, needs_attention=True, since=STARTED - timedelta(hours=5),
                        detail="Intacct refused it: BL01001973 Customer 'C9' specified is not valid.",
                        action="None until someone fixes the cause; then `st-intacct-sync retry --job 9`.")]
    text = report.build(data(findings)).text
    lines = text.splitlines()
    assert lines[2].startswith("Scope:") and "1 Nov 2026 09:30 UTC" in lines[2]
    assert lines[3] == "Period:   1 Nov 2026 09:30 UTC to 25 Nov 2026 16:00 UTC."
    assert "2 exceptions; 1 of them needs someone to look at it (the other is already queued to be fixed)." in text
    assert text.index("In agreement") < text.index("Exceptions\n")
    assert "97,950" in text and "missing_in_intacct" not in text  # plain words, not codes
    assert text.index("Refused by Intacct") < text.index("Missing in Intacct:")  # attention first
    assert "Job 24001 (ServiceTitan id 100001) — Intacct project J-24001" in text
    assert "Open for: 3 days (since 22 Nov 2026 16:00 UTC)" in text and "Open for: 5 hours" in text
    assert "st-intacct-sync backfill --since 2025-01-03" in text
    assert "20 older jobs and projects" in text


def test_scope_all_and_no_exceptions() -> None:
    built = report.build(data([], scope="all", period_start=None, outside_count=0, repair=False))
    assert "Every job and project in ServiceTitan." in built.text
    assert "No exceptions: ServiceTitan and Intacct agree." in built.text
    assert "backfill" not in built.text and "Repairs:  off" in built.text
    assert built.csv_text.count("\n") == 1  # the header alone
    assert built.subject.endswith(": 0 exceptions")


def test_long_lists_are_cut_in_the_body_but_complete_in_the_csv() -> None:
    many = [finding(Category.MISSING, i) for i in range(1, report.PER_CLASS_IN_BODY + 31)]
    built = report.build(data(many))
    assert "… and 30 more in the attached CSV." in built.text
    assert built.csv_rows == len(many)


def test_no_secret_reaches_any_part() -> None:
    secret = "s3cr3t-mail-password"
    leaky = finding(Category.FAILED, 10, detail=f"Intacct refused it: login {secret} refused",
                    st_name=f"job {secret}", needs_attention=True)
    built = report.build(data([leaky]), Redactor([secret]).redact)
    for part in (built.subject, built.text, built.html, built.csv_text):
        assert secret not in part
    assert "***" in built.csv_text


def test_ages_in_words() -> None:
    assert report.age(None, STARTED) == "new"
    assert report.age(STARTED - timedelta(seconds=30), STARTED) == "new"
    assert report.age(STARTED - timedelta(minutes=12), STARTED) == "12 min"
    assert report.age(STARTED - timedelta(hours=1, minutes=5), STARTED) == "1 hour"
    assert report.age(STARTED - timedelta(days=4), STARTED) == "4 days"


def test_headline_says_who_has_to_act() -> None:
    queued = [finding(Category.MISSING), finding(Category.NAME, 2)]
    assert report.headline(data(queued)) == "2 exceptions, all already queued to be fixed: nobody needs to act."
    orphan = [finding(Category.ORPHAN, None, needs_attention=True)]
    assert report.headline(data(orphan)) == "1 exception; it needs someone to look at it."
    one_queued = [finding(Category.MISSING)]
    assert report.headline(data(one_queued)) == "1 exception, already queued to be fixed: nobody needs to act."
    mixed = [finding(Category.ORPHAN, None, needs_attention=True), finding(Category.FAILED, 3, needs_attention=True),
             finding(Category.MISSING, 4)]
    assert report.headline(data(mixed)) == ("3 exceptions; 2 of them need someone to look at them (the other is "
                                            "already queued to be fixed).")
    assert report.subject(1234567, 1) == "[st-intacct-sync] Reconciliation 1234567: 1 exception"


def test_times_in_the_accountants_time_zone() -> None:
    """report.timezone: every time of the text and the HTML is local (with its abbreviation); the
    attachment name keeps its UTC stamp."""
    from zoneinfo import ZoneInfo

    old = finding(Category.FAILED, 9, needs_attention=True, since=STARTED - timedelta(days=3))
    built = report.build(data([old], zone=ZoneInfo("America/Chicago")))
    assert "started 25 Nov 2026 10:00 CST" in built.text  # 16:00 UTC
    assert "Period:   1 Nov 2026 03:30 CST to 25 Nov 2026 10:00 CST." in built.text  # 09:30 UTC, after DST ended
    assert "(since 22 Nov 2026 10:00 CST)" in built.text and "(since 22 Nov 2026 10:00 CST)" in built.html
    assert "UTC" not in built.text and "UTC" not in built.html
    assert built.csv_name == "reconciliation-1234567-20261125T1600Z.csv"
    utc = report.build(data([old]))
    assert "started 25 Nov 2026 16:00 UTC" in utc.text
