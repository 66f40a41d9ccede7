"""Intacct request building and response parsing, against the real samples in tests/fixtures/intacct."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.errors import TransientError
from adapters.intacct import (
    CreateProject,
    ErrorDetail,
    IntacctCredentials,
    IntacctProject,
    Outcome,
    QueryProjects,
    ReadProjects,
    UpdateProject,
    build_request,
    build_session_request,
    classify_result,
    parse_response,
)
from adapters.intacct.xml import is_transient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "intacct"
CREDENTIALS = IntacctCredentials(
    "https://api.intacct.com/ia/xml/xmlgw.phtml", "snd", "snd&pw<", "CO", "usr", "usr\"pw'", None
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# -- requests -------------------------------------------------------------------------------------


def test_session_request_envelope_is_exact() -> None:
    body = build_request(
        CREDENTIALS,
        [
            CreateProject(
                "job-123-v4",
                {
                    "PROJECTID": "J-123",
                    "NAME": "A & <B>",
                    "PROJECTCATEGORY": "Contract",
                    "PARENTID": None,
                    "STATUS": "active",
                },
            )
        ],
        session_id="SESS..",
        control_id="ctl-1",
    )
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<request><control><senderid>snd</senderid><password>snd&amp;pw&lt;</password>"
        b"<controlid>ctl-1</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion>"
        b"<includewhitespace>false</includewhitespace></control>"
        b'<operation transaction="false"><authentication><sessionid>SESS..</sessionid></authentication>'
        b'<content><function controlid="job-123-v4"><create><PROJECT><PROJECTID>J-123</PROJECTID>'
        b"<NAME>A &amp; &lt;B&gt;</NAME><PROJECTCATEGORY>Contract</PROJECTCATEGORY><STATUS>active</STATUS>"
        b"</PROJECT></create></function></content></operation></request>"
    )


def test_login_auth_and_entity() -> None:
    credentials = IntacctCredentials("u", "s", "sp", "CO", "usr", "up", entity_id="East")
    root = ET.fromstring(build_request(credentials, [], session_id=None, control_id="c"))
    login = root.find("operation/authentication/login")
    assert login is not None
    assert [(e.tag, e.text) for e in login] == [
        ("userid", "usr"),
        ("companyid", "CO"),
        ("password", "up"),
        ("locationid", "East"),
    ]
    assert root.find("operation/authentication/sessionid") is None


def test_session_request_is_isolated_get_api_session() -> None:
    credentials = IntacctCredentials("u", "s", "sp", "CO", "usr", "up", entity_id="East")
    root = ET.fromstring(build_session_request(credentials, "c9"))
    functions = root.findall("operation/content/function")
    assert len(functions) == 1 and functions[0].get("controlid") == "c9"
    assert ET.tostring(functions[0][0]) == b"<getAPISession><locationid>East</locationid></getAPISession>"
    plain = ET.fromstring(build_session_request(CREDENTIALS, "c9"))
    assert ET.tostring(plain.find("operation/content/function/getAPISession")) == b"<getAPISession />"  # type: ignore[arg-type]


def test_update_sends_only_changed_fields_and_empty_clears() -> None:
    root = ET.fromstring(
        build_request(
            CREDENTIALS,
            [UpdateProject("u1", "J-1", {"CUSTOMERID": None, "NAME": "New"})],
            session_id="s",
            control_id="c",
        )
    )
    project = root.find("operation/content/function/update/PROJECT")
    assert project is not None
    assert [(e.tag, e.text) for e in project] == [("PROJECTID", "J-1"), ("NAME", "New"), ("CUSTOMERID", None)]


def test_read_and_query_shapes() -> None:
    body = build_request(
        CREDENTIALS,
        [
            ReadProjects("r1", ["J-1", "J-2"]),
            QueryProjects("q1", ["J-%", "P-%"], page_size=500, offset=1000),
            QueryProjects("q2", ["J-%"]),
            QueryProjects("q3", [], page_size=1),
        ],
        session_id="s",
        control_id="c",
    )
    functions = ET.fromstring(body).findall("operation/content/function")
    assert ET.tostring(functions[0][0]) == (
        b"<readByName><object>PROJECT</object><keys>J-1,J-2</keys>"
        b"<fields>RECORDNO,PROJECTID,NAME,PARENTID,CUSTOMERID,STATUS</fields></readByName>"
    )
    assert ET.tostring(functions[1][0]) == (
        b"<query><object>PROJECT</object><select><field>RECORDNO</field><field>PROJECTID</field>"
        b"<field>NAME</field><field>PARENTID</field><field>CUSTOMERID</field><field>STATUS</field></select>"
        b"<filter><or><like><field>PROJECTID</field><value>J-%</value></like>"
        b"<like><field>PROJECTID</field><value>P-%</value></like></or></filter>"
        b"<orderby><order><field>RECORDNO</field><ascending /></order></orderby>"
        b"<pagesize>500</pagesize><offset>1000</offset></query>"
    )
    assert functions[2].find("query/filter/like/value").text == "J-%"  # type: ignore[union-attr]
    assert functions[3].find("query/filter") is None
    assert functions[3].findtext("query/pagesize") == "1"


@pytest.mark.parametrize("bad", ["a\x00b", "\x0b", "x\x1fy", "\ud800", "\ufffe", "\uffff", "\x7f\x08"])
def test_illegal_xml_characters_raise(bad: str) -> None:
    with pytest.raises(ValueError, match="XML 1.0 cannot carry"):
        build_request(CREDENTIALS, [CreateProject("c1", {"NAME": bad})], session_id="s", control_id="c")


def test_illegal_character_in_password_does_not_leak_it() -> None:
    credentials = IntacctCredentials("u", "s", "sp", "CO", "usr", "s3cret\x01pw")
    with pytest.raises(ValueError) as info:
        build_request(credentials, [], session_id=None, control_id="c")
    assert "s3cret" not in str(info.value)


def test_tab_lf_cr_survive_a_parser() -> None:
    name = "a\tb\nc\rd\r\ne"
    body = build_request(CREDENTIALS, [CreateProject("c1", {"NAME": name})], session_id="s", control_id="c")
    assert ET.fromstring(body).findtext("operation/content/function/create/PROJECT/NAME") == name


# -- responses: the real samples ------------------------------------------------------------------


def test_exec_func_error_is_already_exists_and_keeps_the_created_project() -> None:
    parsed = parse_response(fixture("execFuncError.xml"))
    assert parsed.control_status == "success" and parsed.auth_status == "success"
    assert parsed.session_timeout is None  # only a sessiontimestamp: the session is kept
    [result] = parsed.results
    assert (result.controlid, result.function, result.status) == ("testFunctionId", "create", "failure")
    assert result.outcome is Outcome.ALREADY_EXISTS
    assert result.projects == (IntacctProject("Fellow PD2", 1424, None, None, None, None),)
    assert [e.errorno for e in result.errors] == ["BL34000061", "BL01001973", "BL01001973"]
    assert result.errors[0].description2 == "Another Project with the given value(s) Fellow PD1  already exists"
    assert result.error_fields["errorno"] == "BL34000061"
    assert result.data_attrs == {"listtype": "objects", "count": "1"}


def test_exec_login_invalid_is_an_authentication_failure() -> None:
    parsed = parse_response(fixture("execLoginInvalid.xml"))
    assert parsed.control_status == "success"
    assert parsed.auth_status == "failure"
    assert (parsed.userid, parsed.companyid) == ("xml_gateway", "XXXXX")
    assert parsed.auth_errors == (ErrorDetail("XL03000006", "", "Sign-in information is incorrect", ""),)
    assert parsed.results == []


def test_session_invalid_is_recognised() -> None:
    parsed = parse_response(fixture("sessionInvalid.xml"))
    assert parsed.auth_status == "failure"
    assert parsed.userid is None and parsed.companyid is None
    assert parsed.auth_errors[0].errorno == "XL03000006"
    assert parsed.auth_errors[0].description2.startswith("Invalid session")


def test_exec_xml_error_is_a_control_failure() -> None:
    parsed = parse_response(fixture("execXMLError.xml"))
    assert parsed.control_status == "failure"
    assert parsed.auth_status is None and parsed.results == []
    assert [e.errorno for e in parsed.control_errors] == ["XL03000003", "XL03000003"]
    assert "Opening and ending tag mismatch" in parsed.control_errors[0].description2


def test_function_error_success_is_mixed_in_order() -> None:
    parsed = parse_response(fixture("functionErrorSuccess.xml"))
    assert [(r.controlid, r.status, r.outcome) for r in parsed.results] == [
        ("testFunctionId", "failure", Outcome.PERMANENT),
        ("abcdef", "success", Outcome.SUCCESS),
        ("testFunctionId", "failure", Outcome.PERMANENT),
    ]
    assert parsed.results[0].errors[0].errorno == "Invalid fields list x"
    assert parsed.results[1].data_attrs["listtype"] == "APBILL"
    assert parsed.session_timeout == datetime(2019, 5, 30, 18, 29, 53, tzinfo=timezone(timedelta(hours=-7)))


def test_exec_project_success_parses_both_cases_of_project() -> None:
    parsed = parse_response(fixture("execProjectSuccess.xml"))
    first, second = parsed.results
    assert first.outcome is Outcome.SUCCESS
    assert [p.project_id for p in first.projects] == [
        "A17-ADVC",
        "A17-CONF01",
        "A17-Lecture1",
        "A17-Lecture2",
        "A17-READ01",
    ]
    assert first.projects[0] == IntacctProject("A17-ADVC", 989, "Advisory Council", None, None, None)
    assert first.data_attrs["numremaining"] == "30" and first.data_attrs["totalcount"] == "35"
    assert second.projects == (IntacctProject("Fellow PD1", 1423, "Program Development1", None, None, None),)


def test_vendor_response_parses_without_projects() -> None:
    parsed = parse_response(fixture("vendorResponse.xml"))
    assert [(r.function, r.outcome, r.projects) for r in parsed.results] == [
        ("read", Outcome.SUCCESS, ()),
        ("readByQuery", Outcome.SUCCESS, ()),
    ]
    assert dict(parsed.results[1].data_attrs) == {
        "listtype": "VENDOR",
        "count": "1",
        "totalcount": "1",
        "numremaining": "5",
        "resultId": "aaaaa",
    }


def test_get_api_session_response() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status>
    <senderid>s</senderid><controlid>c</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion></control>
    <operation><authentication><status>success</status><userid>u</userid><companyid>co</companyid>
    <locationid></locationid><sessiontimestamp>2015-10-22T20:58:27-07:00</sessiontimestamp>
    <sessiontimeout>2015-10-23T20:58:27-07:00</sessiontimeout></authentication><result><status>success</status>
    <function>getAPISession</function><controlid>c</controlid><data><api><sessionid>fAkE..</sessionid>
    <endpoint>https://na12.intacct.com/ia/xml/xmlgw.phtml</endpoint><locationid></locationid></api></data>
    </result></operation></response>"""
    parsed = parse_response(body)
    assert parsed.session_id == "fAkE.."
    assert parsed.session_endpoint == "https://na12.intacct.com/ia/xml/xmlgw.phtml"
    assert parsed.session_timeout == datetime(2015, 10, 24, 3, 58, 27, tzinfo=UTC)


# -- classification (function rows) ---------------------------------------------------------------


def err(errorno: str = "", description: str = "", description2: str = "", correction: str = "") -> ErrorDetail:
    return ErrorDetail(errorno, description, description2, correction)


@pytest.mark.parametrize(
    ("function", "status", "errors", "outcome"),
    [
        ("create", "success", [], Outcome.SUCCESS),
        ("create", "failure", [err("BL34000061")], Outcome.ALREADY_EXISTS),
        (
            "create",
            "failure",
            [err("BL01001973", "", "The account number '5000.11' already exists")],
            Outcome.ALREADY_EXISTS,
        ),
        ("update", "failure", [err("Cannot update non-existing PROJECT with PROJECTID=J-1.")], Outcome.NOT_EXISTING),
        ("update", "failure", [err("BL01001973", "", "cannot update non-existing project")], Outcome.NOT_EXISTING),
        (
            "create",
            "failure",
            [err("200024", "", "There are too many operations running for this company (200024).")],
            Outcome.TRANSIENT,
        ),
        ("create", "failure", [err("XYZ", "The Service is Temporarily Off-line")], Outcome.TRANSIENT),
        ("update", "failure", [err("XYZ", "", "", "Please Try Again Later")], Outcome.TRANSIENT),
        ("query", "failure", [err("API rate limit exceeded")], Outcome.TRANSIENT),
        ("create", "failure", [err("GW-0010", "rate limit")], Outcome.TRANSIENT),
        ("create", "aborted", [err("XL03000009", "", "The entire transaction ... rolled back")], Outcome.TRANSIENT),
        ("create", "failure", [err("BL01001973", "", "Customer 'C9' specified is not valid.")], Outcome.PERMANENT),
        ("update", "failure", [err("BL34000061")], Outcome.PERMANENT),  # not a create: no "exists" meaning
        ("create", "failure", [err("Cannot update non-existing PROJECT")], Outcome.PERMANENT),
        ("readByName", "failure", [err("Invalid fields list x")], Outcome.PERMANENT),
        ("create", "failure", [], Outcome.PERMANENT),
    ],
)
def test_classify_result(function: str, status: str, errors: list[ErrorDetail], outcome: Outcome) -> None:
    assert classify_result(function, status, errors) is outcome


def test_transient_markers_look_at_every_field() -> None:
    for index in range(4):
        parts = ["", "", "", ""]
        parts[index] = "try again later"
        assert is_transient([ErrorDetail(*parts)])
    assert not is_transient([err("BL01001973", "", "Could not create project record!")])


# -- hostile and broken documents -----------------------------------------------------------------

COMPLETE = (
    b'<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status></control><operation>'
    b"<authentication><status>success</status><userid>u</userid><companyid>c</companyid></authentication>"
    b"<result><status>success</status><function>create</function><controlid>f1</controlid></result>"
    b"</operation></response>"
)
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<response><control><status>&lol3;</status></control></response>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><control><status>&xxe;</status></control></response>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE response SYSTEM "http://127.0.0.1:1/evil.dtd"><response/>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x">%p;]><response/>"""


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        EXTERNAL_DTD,
        PARAMETER_ENTITY,
        b"",
        b"<html>502 Bad Gateway</html>",
        b"<response><control>",
        b"\xff\xfe<response/>",
        b"not xml at all",
        b"   \n",
        b"<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>",
        b"garbage<response/>",
        COMPLETE + b"<trailing/>",
        COMPLETE[: len(COMPLETE) // 2],
        b"<response><operation/></response>",
        b"<response><control><senderid>s</senderid></control></response>",
        b"<response><control><status>success</status></control></response>",
        b"<response><control><status>success</status></control><operation/></response>",
        b"<response><control><status>success</status></control><operation><authentication>"
        b"<userid>u</userid><companyid>c</companyid></authentication></operation></response>",
        b"<response><control><status>success</status></control><operation><authentication>"
        b"<status>success</status><companyid>c</companyid></authentication></operation></response>",
        COMPLETE.replace(b"<status>success</status><function>", b"<function>"),
        COMPLETE.replace(b"<controlid>f1</controlid>", b""),
    ],
)
def test_a_body_that_is_not_a_complete_response_is_transient_with_unknown_outcome(body: bytes) -> None:
    # Whatever sent it (a CDN page, a cut connection, a hostile proxy), the functions may have run.
    with pytest.raises(TransientError, match="incomplete response") as info:
        parse_response(body)
    assert info.value.outcome_unknown


def test_the_complete_reference_body_parses() -> None:
    parsed = parse_response(COMPLETE)
    assert [r.controlid for r in parsed.results] == ["f1"]
