"""PROJECTID ``like`` patterns as query filters: the REST API has no ``like``."""

from __future__ import annotations

import pytest

from adapters.intacct_rest import like_filters


@pytest.mark.parametrize(("patterns", "filters", "expression"), [
    ((), [], None),
    (("J-%",), [{"$startsWith": {"id": "J-"}}], None),
    (("J-%", "P-%"), [{"$startsWith": {"id": "J-"}}, {"$startsWith": {"id": "P-"}}], "1 or 2"),
    (("%-X",), [{"$endsWith": {"id": "-X"}}], None),
    (("%mid%",), [{"$contains": {"id": "mid"}}], None),
    (("J-100",), [{"$eq": {"id": "J-100"}}], None),
    (("J-1_",), [{"$startsWith": {"id": "J-1"}}], None),
    (("%a%b",), [{"$ne": {"id": None}}], None),
])
def test_patterns_become_filters(patterns: tuple[str, ...], filters: list[object], expression: str | None) -> None:
    got_filters, got_expression, _check = like_filters(patterns)
    assert (got_filters, got_expression) == (filters, expression)


def test_wildcards_inside_are_rechecked_here() -> None:
    _filters, _expression, check = like_filters(["J-1_", "%a%b"])
    assert check("J-12") and check("xaYb") and not check("J-123") and not check("J-1")
    _filters, _expression, exact = like_filters(["J-%"])
    assert exact("anything")  # the API's own filter is exact: nothing to re-check
