"""Finding 9: the report cannot carry a formula into any cell a spreadsheet will see, nor bidirectional
controls that make an id read differently from how it is written; Intacct still gets the names exactly.

Excel in German, French, Dutch, Spanish and Italian locales splits a CSV line at `;` (other tools at a
tab or `|`), so a formula may start after any of those, not only at the start of a comma-separated cell.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from daemon.reconcile import report
from daemon.store.reconcile_rows import Category
from statemachine.desired import JobFacts, desired_for_job
from statemachine.settings import FieldMapping, Settings
from tests.unit.test_report import data, finding

HOSTILE = [
    'Acme;=HYPERLINK("http://evil.example","x")',
    "Acme; =1+1",
    'Acme;"=cmd|\' /C calc\'!A0"',
    "Acme\t+SUM(1,2)",
    "Acme|@SUM(1)",
    "Acme;-2+3",
    "=1+1",
    "@SUM(A1)",
]
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
SPOOFED = "Smith \u202e4321-J\u202c \u2067x\u2069"  # reads as "Smith J-1234 x" in a right-to-left override


def _spreadsheet_cells(csv_text: str) -> list[str]:
    """Every cell a spreadsheet may make of the file: split at `,` (quotes honoured), then at ; tab |."""
    cells = []
    for row in csv.reader(io.StringIO(csv_text)):
        for cell in row:
            cells += re.split(r"[;\t|]", cell)
    # Excel in a `;` locale does not honour the commas' quotes: split the raw lines too.
    for line in csv_text.splitlines():
        cells += re.split(r"[;\t|]", line)
    return cells


@pytest.mark.parametrize("name", HOSTILE)
def test_no_cell_starts_a_formula(name: str) -> None:
    built = report.build(data([finding(Category.NAME, 7, st_name=name, intacct_name=name, detail=f"was {name}")]))
    for cell in _spreadsheet_cells(built.csv_text)[1:]:
        start = cell.lstrip(" \"'")
        if cell.lstrip(" \"").startswith("'"):
            continue  # neutralised: the quote makes the rest text
        assert not start.startswith(("=", "+", "-", "@")), (name, cell, built.csv_text)


def test_the_text_stays_readable() -> None:
    built = report.build(data([finding(Category.NAME, 7, st_name="Acme;=1+1 & Sons")]))
    row = list(csv.reader(io.StringIO(built.csv_text)))[1]
    assert row[4] == "Acme;'=1+1 & Sons"  # one quote added where a formula could start, nothing lost


def test_bidirectional_controls_are_stripped_from_report_and_csv() -> None:
    built = report.build(data([finding(Category.NAME, 7, st_name=SPOOFED, intacct_name=SPOOFED,
                                       intacct_project_id="J-1\u202e234", detail=f"Name is “{SPOOFED}”")]))
    for part in (built.text, built.html, built.csv_text):
        assert not set(part) & set(BIDI), repr(part)
    assert "Smith 4321-J x" in built.text and "Smith 4321-J x" in built.csv_text and "J-1234" in built.csv_text


def test_names_still_go_to_intacct_exactly() -> None:
    facts = JobFacts(24011, "24011", None, 7, SPOOFED)
    desired = desired_for_job(facts, None, Settings(), FieldMapping())
    assert SPOOFED in desired.name
