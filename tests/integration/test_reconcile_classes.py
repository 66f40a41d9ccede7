"""The precedence of the reconciliation classes (daemon/reconcile/check.py), on values alone."""

from __future__ import annotations

import pytest

from daemon.reconcile.check import classify, describe, differences, error_words
from daemon.store.reconcile_rows import Category
from daemon.store.rows import RecordError
from statemachine import Desired, State

WANT = Desired(project_id="J-24001", name="24001 Maria Gonzalez", category="Contract", parent_id="P-1101",
               customer_id="C10001", status="active")
SAME = (WANT.name, WANT.parent_id, WANT.customer_id)


def test_matched_and_each_single_difference() -> None:
    assert classify(WANT, SAME, state=State.SYNCED, active=True, in_scope=True) is Category.MATCHED
    cases = {("Other", "P-1101", "C10001"): Category.NAME, (WANT.name, "P-9", "C10001"): Category.PARENT,
             (WANT.name, None, "C10001"): Category.PARENT, (WANT.name, "P-1101", None): Category.CUSTOMER}
    for actual, expected in cases.items():
        assert classify(WANT, actual, state=None, active=True, in_scope=True) is expected


def test_several_differences_give_the_first_class_and_name_them_all() -> None:
    actual = ("Other", "P-9", "C9")
    assert differences(WANT, actual) == [Category.PARENT, Category.CUSTOMER, Category.NAME]
    assert classify(WANT, actual, state=State.SYNCED, active=True, in_scope=True) is Category.PARENT
    detail = describe(Category.PARENT, WANT, actual, kind="job", parent_st_id=50001)
    assert "Parent project in Intacct is P-9" in detail and "Customer in Intacct is C9" in detail
    assert "Name in Intacct is “Other”" in detail and "(ServiceTitan project 50001)" in detail


@pytest.mark.parametrize("actual", [None, SAME, ("Other", None, None)])
def test_local_state_comes_before_any_comparison(actual: tuple[str | None, ...] | None) -> None:
    assert classify(WANT, actual, state=State.FAILED, active=True, in_scope=True) is Category.FAILED  # type: ignore[arg-type]
    assert classify(WANT, actual, state=State.BLOCKED, active=True, in_scope=False) is Category.BLOCKED  # type: ignore[arg-type]


def test_absent_records_by_scope_and_activity() -> None:
    assert classify(WANT, None, state=State.SYNCED, active=True, in_scope=True) is Category.MISSING
    assert classify(WANT, None, state=None, active=True, in_scope=False) is Category.OUTSIDE
    # Deactivated in ServiceTitan: the daemon never creates it, so its absence is as desired.
    assert classify(WANT, None, state=State.SYNCED, active=False, in_scope=True) is Category.MATCHED
    # Out of scope but present and different: still reported (not repaired) as a mismatch.
    assert classify(WANT, ("Old", "P-1101", "C10001"), state=None, active=True, in_scope=False) is Category.NAME


def test_empty_and_missing_values_compare_equal_and_status_is_ignored() -> None:
    bare = Desired("P-1", "Name", "Contract", None, None, "inactive")
    assert classify(bare, ("Name", "", None), state=None, active=True, in_scope=True) is Category.MATCHED


def test_error_words_make_one_sentence() -> None:
    assert error_words(None) == "no error text was recorded."
    assert error_words(RecordError("permanent", "", "BL01001973", "Customer 'C9' is not valid.")) == (
        "BL01001973 Customer 'C9' is not valid.")
    assert error_words(RecordError("permanent", "line\nbreak", "X")) == "X line break."
