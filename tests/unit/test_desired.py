"""Desired Intacct fields from ST facts and the settings card (the README's "Settings", docs/architecture.md)."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemachine import Desired, FieldMapping, JobFacts, ProjectFacts, Settings, desired_for_job, desired_for_project
from statemachine.desired import changed_fields
from statemachine.naming import clean_name, clean_text, placeholders, render, truncate

MAPPING = FieldMapping()
SETTINGS = Settings()
PROJECT = ProjectFacts(id=7, number="P100", name="Riverside Office HVAC", customer_id=42,
                       customer_name="Acme LLC")
JOB = JobFacts(id=123, number="1001", project_id=7, customer_id=42, customer_name="Acme LLC")


def test_job_with_parent_project() -> None:
    d = desired_for_job(JOB, PROJECT, SETTINGS, MAPPING)
    assert d.fields() == {
        "PROJECTID": "J-1001", "NAME": "1001 Acme LLC", "PROJECTCATEGORY": "Contract",
        "PARENTID": "P-P100", "CUSTOMERID": None, "STATUS": "active",
    }


def test_parent_mapping_off_means_no_parentid() -> None:
    d = desired_for_job(JOB, PROJECT, replace(SETTINGS, enable_parent_project_mapping=False), MAPPING)
    assert d.parent_id is None


def test_job_without_project_has_no_parent() -> None:
    d = desired_for_job(replace(JOB, project_id=None), None, SETTINGS, MAPPING)
    assert d.parent_id is None


def test_customer_linkage_sets_customerid_on_jobs_and_projects() -> None:
    settings = replace(SETTINGS, enable_customer_project_linkage=True)
    mapping = replace(MAPPING, customer_id="C-{customer_id}")
    assert desired_for_job(JOB, PROJECT, settings, mapping).customer_id == "C-42"
    assert desired_for_project(PROJECT, settings, mapping).customer_id == "C-42"


def test_linkage_needs_the_master_switch() -> None:
    settings = Settings(enable_intacct_projects=False, enable_customer_project_linkage=True)
    assert desired_for_job(JOB, PROJECT, settings, MAPPING).customer_id is None


def test_project_name_follows_st_name_only_with_the_setting() -> None:
    assert desired_for_project(PROJECT, SETTINGS, MAPPING).name == "Riverside Office HVAC"
    off = replace(SETTINGS, use_project_name_for_intacct_project_name=False)
    assert desired_for_project(PROJECT, off, MAPPING).name == "Project P100"


@pytest.mark.parametrize("name", [None, "", "   ", "\x00\x01\x1f"])
def test_empty_project_name_falls_back(name: str | None) -> None:
    d = desired_for_project(replace(PROJECT, name=name), SETTINGS, MAPPING)
    assert d.name == "Project P100"


def test_long_name_is_cut_to_max_length() -> None:
    d = desired_for_project(replace(PROJECT, name="x" * 10_000), SETTINGS, MAPPING)
    assert d.name == "x" * 200


def test_inactive_records_want_inactive_status() -> None:
    assert desired_for_job(replace(JOB, active=False), PROJECT, SETTINGS, MAPPING).status == "inactive"


def test_metacharacters_are_kept_exactly() -> None:
    name = "Smith & Sons <HQ> \"O'Brien\" 🚀 שלום"
    assert desired_for_project(replace(PROJECT, name=name), SETTINGS, MAPPING).name == name


def test_control_characters_are_removed() -> None:
    assert clean_text("a\x00b\tc\nd\x7fe\x9f") == "abcde"
    assert clean_text("lone \ud800 surrogate \ufffe") == "lone  surrogate "


def test_job_name_that_renders_empty_uses_its_projectid() -> None:
    job = replace(JOB, number="", customer_name=None)
    mapping = replace(MAPPING, job_project_id="J-{job_id}")
    assert desired_for_job(job, PROJECT, SETTINGS, mapping).name == "J-123"


def test_job_template_may_use_project_values() -> None:
    mapping = replace(MAPPING, job_project_name="{project_name} / {job_number}")
    assert desired_for_job(JOB, PROJECT, SETTINGS, mapping).name == "Riverside Office HVAC / 1001"


def test_digest_changes_with_any_field_and_only_then() -> None:
    a = desired_for_job(JOB, PROJECT, SETTINGS, MAPPING)
    assert a.digest() == desired_for_job(JOB, PROJECT, SETTINGS, MAPPING).digest()
    assert a.digest() != replace(a, name=a.name + "!").digest()
    assert Desired.from_fields(a.fields()) == a


def test_changed_fields_sends_only_differences_and_clears_with_none() -> None:
    want = {"PROJECTID": "J-1", "NAME": "B", "PARENTID": None, "CUSTOMERID": "C1", "STATUS": "active"}
    have = {"PROJECTID": "J-1", "NAME": "A", "PARENTID": "P-1", "CUSTOMERID": "C1", "STATUS": "active"}
    assert changed_fields(want, have) == {"NAME": "B", "PARENTID": None}
    assert changed_fields(want, want) == {}


def test_render_and_placeholders() -> None:
    assert render("J-{job_number}", {"job_number": "42"}) == "J-42"
    assert render("{a} {b}", {"a": None, "b": "x"}) == "x"
    assert placeholders("{job_number} {customer_name}") == {"job_number", "customer_name"}


def test_truncate_never_splits_a_character() -> None:
    family = "👨\u200d👩\u200d👧"
    assert truncate("ab" + family, 4) == "ab"  # the ZWJ sequence is dropped whole
    assert truncate("e\u0301e\u0301", 3) == "e\u0301"  # accent stays with its letter
    assert truncate("👍🏽x", 1) == ""  # a skin-tone modifier is never left behind or cut off


@given(st.text(max_size=400), st.integers(min_value=1, max_value=300))
def test_clean_name_properties(raw: str, limit: int) -> None:
    name = clean_name(raw, limit)
    assert len(name) <= limit
    assert all(unicodedata.category(c) not in ("Cc", "Cs") for c in name)
    assert "\ufffe" not in name and "\uffff" not in name
    name.encode("utf-8")  # always encodable: no lone surrogates
    # Nothing but control characters and surrounding white space is ever removed, and the cut only
    # drops a tail: the result is a prefix of the cleaned text.
    assert clean_text(raw).strip().startswith(name)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=150))
def test_printable_names_survive_unchanged(raw: str) -> None:
    raw = raw.replace("\ufffe", "").replace("\uffff", "")
    assert clean_name(raw, 200) == raw.strip()
