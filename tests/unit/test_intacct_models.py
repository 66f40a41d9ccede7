"""Intacct adapter models: credentials masking, errors, projects, function specs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from adapters.intacct import (
    CreateProject,
    ErrorDetail,
    FunctionResult,
    IntacctCredentials,
    IntacctProject,
    Outcome,
    QueryProjects,
    ReadProjects,
    UpdateProject,
)


def test_credentials_repr_masks_both_passwords() -> None:
    credentials = IntacctCredentials(
        "https://api.intacct.com/ia/xml/xmlgw.phtml", "snd", "sender-pw-123", "co", "usr", "user-pw-456", "E1"
    )
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert "sender-pw-123" not in text
        assert "user-pw-456" not in text
        assert "snd" in text and "usr" in text and "E1" in text


def test_error_detail_text_joins_non_empty_parts() -> None:
    error = ErrorDetail("BL01001973", "", "Customer 'C9' specified is not valid.", "")
    assert error.text() == "BL01001973 Customer 'C9' specified is not valid."
    assert ErrorDetail("", "", "", "").text() == ""


@pytest.mark.parametrize("tag", ["PROJECT", "project", "Project"])
def test_project_from_element_any_case(tag: str) -> None:
    element = ET.fromstring(
        f"<{tag}><RECORDNO>12</RECORDNO><projectid>J-1</projectid><NAME>A &amp; B</NAME>"
        f"<PARENTID></PARENTID><CUSTOMERID/><STATUS>active</STATUS></{tag}>"
    )
    project = IntacctProject.from_element(element)
    assert project == IntacctProject("J-1", 12, "A & B", None, None, "active")


def test_project_from_element_without_fields() -> None:
    project = IntacctProject.from_element(ET.fromstring("<project><PROJECTID>P</PROJECTID></project>"))
    assert project == IntacctProject("P", None, None, None, None, None)
    with pytest.raises(ValueError):
        IntacctProject.from_element(ET.fromstring("<project><NAME>x</NAME></project>"))


def test_error_fields_takes_first_meaningful_error() -> None:
    result = FunctionResult(
        controlid="c",
        function="create",
        status="failure",
        outcome=Outcome.PERMANENT,
        errors=(ErrorDetail("", "", "", ""), ErrorDetail("BL01001973", "", "Invalid Parent 'P-1' specified.", "")),
    )
    assert result.error_fields == {
        "class": "permanent",
        "errorno": "BL01001973",
        "description": "",
        "description2": "Invalid Parent 'P-1' specified.",
        "correction": "",
    }
    transient = FunctionResult("c", "create", "", Outcome.TRANSIENT)
    assert transient.error_fields["class"] == "transient"
    assert transient.error_fields["description"]


def test_function_specs_validate() -> None:
    with pytest.raises(ValueError, match="unsupported PROJECT fields"):
        CreateProject("c", {"PROJECTID": "J-1", "DESCRIPTION": "x"})
    with pytest.raises(ValueError, match="unsupported PROJECT fields"):
        UpdateProject("c", "J-1", {"PROJECTID": "J-2"})
    with pytest.raises(ValueError):
        ReadProjects("c", [f"J-{i}" for i in range(101)])
    with pytest.raises(ValueError):
        ReadProjects("c", ["J,1"])
    with pytest.raises(ValueError):
        QueryProjects("c", ["J-%"], page_size=2001)
    with pytest.raises(ValueError):
        CreateProject("", {"PROJECTID": "J-1"})
    assert ReadProjects("c", [f"J-{i}" for i in range(100)]).controlid == "c"
