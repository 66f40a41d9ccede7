"""Building Intacct XML requests and reading responses (pure: no I/O).

Requests are built with ElementTree, never with string templates, so that names holding ``&``, ``<``,
quotes or any script are escaped by the library. Responses are parsed with defusedxml: a document
carrying a DTD or entities is refused, as is anything that is not a complete Intacct ``<response>``.
Such a body came with HTTP 200 from something between us and Intacct (a maintenance or CDN page, a
connection cut mid-document), possibly after the functions ran: it is a transient failure whose
outcome is unknown, never a refusal of the records it carried.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from adapters.errors import TransientError
from adapters.intacct.models import (
    PROJECT_FIELDS,
    READ_FIELDS,
    CreateProject,
    ErrorDetail,
    Function,
    FunctionResult,
    IntacctCredentials,
    IntacctProject,
    Outcome,
    QueryProjects,
    ReadProjects,
    UpdateProject,
    function_name,
)

# XML 1.0 Char excludes C0 controls other than tab/LF/CR, surrogates, U+FFFE and U+FFFF.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Lower-case fragments searched in all four fields of an error (errorno is sometimes a sentence).
TRANSIENT_MARKERS: tuple[str, ...] = (
    "too many operations running for this company",
    "temporarily off-line",
    "temporarily offline",
    "try again later",
    "api rate limit exceeded",
    "gw-0010",
    # "There was an error processing the request.": Intacct's own hiccup, gone on the next try.
    "dl02000001",
    "there was an error processing the request",
)
ALREADY_EXISTS_ERRORNO = "BL34000061"
ALREADY_EXISTS_MARKER = "already exists"
NOT_EXISTING_MARKER = "cannot update non-existing"
XML_PARSE_ERRORNO = "XL03000003"


@dataclass(frozen=True)
class ParsedResponse:
    """A gateway response: control and authentication status with their errors, and the results."""

    control_status: str
    control_id: str | None = None
    control_errors: tuple[ErrorDetail, ...] = ()
    auth_status: str | None = None
    auth_errors: tuple[ErrorDetail, ...] = ()
    userid: str | None = None
    companyid: str | None = None
    session_timeout: datetime | None = None
    results: list[FunctionResult] = field(default_factory=list)
    session_id: str | None = field(default=None, repr=False)  # a credential: never in a repr
    session_endpoint: str | None = None


# ---------------------------------------------------------------------------------------------
# Requests


def check_xml_text(text: str, where: str) -> str:
    """Return ``text`` unchanged, or raise ValueError when XML 1.0 cannot carry one of its characters."""
    bad = _ILLEGAL_XML.search(text)
    if bad is not None:
        # The value itself stays out of the message: it may be a password.
        raise ValueError(
            f"{where} holds U+{ord(bad.group()):04X} at position {bad.start()}, "
            "a character XML 1.0 cannot carry; strip it before sending"
        )
    return text


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = check_xml_text(text, f"<{tag}>")
    return child


def _envelope(
    credentials: IntacctCredentials, *, session_id: str | None, control_id: str
) -> tuple[ET.Element, ET.Element]:
    request = ET.Element("request")
    control = _sub(request, "control")
    _sub(control, "senderid", credentials.sender_id)
    _sub(control, "password", credentials.sender_password)
    _sub(control, "controlid", control_id)
    _sub(control, "uniqueid", "false")
    _sub(control, "dtdversion", "3.0")
    _sub(control, "includewhitespace", "false")
    operation = _sub(request, "operation")
    operation.set("transaction", "false")
    authentication = _sub(operation, "authentication")
    if session_id is not None:
        _sub(authentication, "sessionid", session_id)
    else:
        login = _sub(authentication, "login")
        _sub(login, "userid", credentials.user_id)
        _sub(login, "companyid", credentials.company_id)
        _sub(login, "password", credentials.user_password)
        if credentials.entity_id:
            _sub(login, "locationid", credentials.entity_id)
    return request, _sub(operation, "content")


def _function(content: ET.Element, controlid: str) -> ET.Element:
    element = _sub(content, "function")
    element.set("controlid", check_xml_text(controlid, "function controlid"))
    return element


def _project_fields(parent: ET.Element, fields: Iterable[tuple[str, str | None]], *, empty_clears: bool) -> None:
    for name, value in fields:
        if value is not None:
            _sub(parent, name, value)
        elif empty_clears:
            _sub(parent, name)


def _ordered(fields: Mapping[str, str | None]) -> list[tuple[str, str | None]]:
    return [(name, fields[name]) for name in PROJECT_FIELDS if name in fields]


def _append_function(content: ET.Element, function: Function) -> None:
    element = _function(content, function.controlid)
    if isinstance(function, CreateProject):
        project = _sub(_sub(element, "create"), "PROJECT")
        _project_fields(project, _ordered(function.fields), empty_clears=False)
    elif isinstance(function, UpdateProject):
        project = _sub(_sub(element, "update"), "PROJECT")
        _sub(project, "PROJECTID", function.project_id)
        _project_fields(project, _ordered(function.fields), empty_clears=True)
    elif isinstance(function, ReadProjects):
        read = _sub(element, "readByName")
        _sub(read, "object", "PROJECT")
        _sub(read, "keys", ",".join(function.project_ids))
        _sub(read, "fields", ",".join(READ_FIELDS))
    elif isinstance(function, QueryProjects):
        _append_query(element, function)
    else:  # pragma: no cover - the Function union is closed
        raise TypeError(f"unsupported Intacct function {type(function).__name__}")


def _append_query(element: ET.Element, function: QueryProjects) -> None:
    query = _sub(element, "query")
    _sub(query, "object", "PROJECT")
    select = _sub(query, "select")
    for name in READ_FIELDS:
        _sub(select, "field", name)
    if function.patterns:
        filter_ = _sub(query, "filter")
        holder = _sub(filter_, "or") if len(function.patterns) > 1 else filter_
        for pattern in function.patterns:
            like = _sub(holder, "like")
            _sub(like, "field", "PROJECTID")
            _sub(like, "value", pattern)
    order = _sub(_sub(query, "orderby"), "order")
    _sub(order, "field", "RECORDNO")
    _sub(order, "ascending")
    _sub(query, "pagesize", str(function.page_size))
    _sub(query, "offset", str(function.offset))


def _serialize(root: ET.Element) -> bytes:
    body = ET.tostring(root, encoding="unicode").encode("utf-8")
    # ElementTree writes a CR in text as is, and every XML parser turns it into LF; a character
    # reference keeps it. The markup we generate never holds a CR, so this touches text only.
    return _XML_DECLARATION + body.replace(b"\r", b"&#13;")


def build_request(
    credentials: IntacctCredentials, functions: Sequence[Function], *, session_id: str | None, control_id: str
) -> bytes:
    """The UTF-8 request document carrying ``functions`` (login auth when ``session_id`` is None)."""
    request, content = _envelope(credentials, session_id=session_id, control_id=control_id)
    for function in functions:
        _append_function(content, function)
    return _serialize(request)


def build_session_request(credentials: IntacctCredentials, control_id: str) -> bytes:
    """An isolated ``getAPISession`` request with login authentication."""
    request, content = _envelope(credentials, session_id=None, control_id=control_id)
    get_session = _sub(_function(content, control_id), "getAPISession")
    if credentials.entity_id:
        _sub(get_session, "locationid", credentials.entity_id)
    return _serialize(request)


# ---------------------------------------------------------------------------------------------
# Responses


def error_text(errors: Iterable[ErrorDetail]) -> str:
    """All four fields of all errors, lower-cased, for marker searches."""
    parts = (" ".join((e.errorno, e.description, e.description2, e.correction)) for e in errors)
    return " | ".join(parts).lower()


def is_transient(errors: Sequence[ErrorDetail]) -> bool:
    """True when the errors say "later": rate limits, concurrency limits, maintenance."""
    text = error_text(errors)
    return any(marker in text for marker in TRANSIENT_MARKERS)


def classify_result(function: str, status: str, errors: Sequence[ErrorDetail]) -> Outcome:
    """The meaning of one function result: success, already exists, not existing, transient or permanent."""
    status = status.strip().lower()
    if status == "success":
        return Outcome.SUCCESS
    if status == "aborted" or is_transient(errors):
        return Outcome.TRANSIENT
    kind = function.strip().lower()
    text = error_text(errors)
    if kind == "create" and (
        any(e.errorno.strip() == ALREADY_EXISTS_ERRORNO for e in errors) or ALREADY_EXISTS_MARKER in text
    ):
        return Outcome.ALREADY_EXISTS
    if kind == "update" and NOT_EXISTING_MARKER in text:
        return Outcome.NOT_EXISTING
    return Outcome.PERMANENT


def _text(parent: ET.Element | None, tag: str) -> str | None:
    if parent is None:
        return None
    child = parent.find(tag)
    if child is None:
        return None
    return child.text or ""


def _errors(parent: ET.Element | None) -> tuple[ErrorDetail, ...]:
    if parent is None:
        return ()
    return tuple(ErrorDetail.from_element(e) for e in parent.iterfind("errormessage/error"))


def parse_timestamp(value: str | None) -> datetime | None:
    """An Intacct timestamp (ISO 8601 with offset); a value without offset is taken as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class IncompleteResponse(TransientError):
    """A 200 whose body is not a complete Intacct ``<response>``: the functions may or may not have run."""

    def __init__(self, why: str) -> None:
        super().__init__(f"Intacct answered with an incomplete response: {why}", outcome_unknown=True)


def _required_text(parent: ET.Element, tag: str, where: str) -> str:
    value = _text(parent, tag)
    if value is None or not value.strip():
        raise IncompleteResponse(f"<{where}> without <{tag}>")
    return value.strip()


def _parse_result(element: ET.Element) -> tuple[FunctionResult, str | None, str | None]:
    status = _required_text(element, "status", "result").lower()
    function = _required_text(element, "function", "result")
    # Results are matched to records by controlid: a result without one cannot be placed.
    controlid = _required_text(element, "controlid", "result")
    projects: list[IntacctProject] = []
    attrs: dict[str, str] = {}
    session_id = endpoint = None
    data = element.find("data")
    if data is not None:
        attrs = dict(data.attrib)
        for child in data:
            if child.tag.lower() == "project":
                try:
                    projects.append(IntacctProject.from_element(child))
                except ValueError:
                    continue  # a row without PROJECTID identifies nothing we track
            elif child.tag == "api":
                session_id = _text(child, "sessionid")
                endpoint = _text(child, "endpoint")
    errors = _errors(element)
    result = FunctionResult(
        controlid=controlid,
        function=function,
        status=status,
        outcome=classify_result(function, status, errors),
        projects=tuple(projects),
        errors=errors,
        data_attrs=MappingProxyType(attrs),
    )
    return result, session_id, endpoint


def _parse_xml(body: bytes) -> ET.Element:
    if not body.strip():
        raise IncompleteResponse("empty body")
    try:
        return DefusedET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        # ValueError and LookupError: expat refuses the declared encoding ("bogus", or a multi-byte one
        # such as shift_jis) before it reads a single element. Only the exception's type and a short
        # text are kept: the body may be a whole HTML page.
        raise IncompleteResponse(f"not an XML document ({type(exc).__name__}: {str(exc)[:120]})") from None


def _check_operation(operation: ET.Element | None) -> ET.Element:
    """The authentication block of an operation that ran, checked for what every answer carries."""
    if operation is None:
        raise IncompleteResponse("<response> without <operation>")
    authentication = operation.find("authentication")
    if authentication is None:
        raise IncompleteResponse("<operation> without <authentication>")
    status = _required_text(authentication, "status", "authentication").lower()
    if status == "success":
        for tag in ("userid", "companyid"):
            _required_text(authentication, tag, "authentication")
    return authentication


def parse_response(body: bytes) -> ParsedResponse:
    """Parse a gateway response; anything but a complete ``<response>`` raises IncompleteResponse."""
    root = _parse_xml(body)
    if root.tag != "response":
        raise IncompleteResponse(f"root element <{str(root.tag)[:40]}>, expected <response>")
    control = root.find("control")
    if control is None:
        raise IncompleteResponse("<response> without <control>")
    control_status = _required_text(control, "status", "control").lower()
    operation = root.find("operation")
    authentication = _check_operation(operation) if control_status == "success" else None
    results: list[FunctionResult] = []
    session_id = endpoint = None
    if operation is not None and authentication is not None:
        for element in operation.iterfind("result"):
            result, sid, url = _parse_result(element)
            results.append(result)
            if sid and session_id is None:
                session_id, endpoint = sid, url or None
        if not results and (_text(authentication, "status") or "").strip().lower() == "success":
            # Every request carries at least one function, and each function gets a result.
            raise IncompleteResponse("<operation> without <result>")
    return ParsedResponse(
        control_status=control_status,
        control_id=_text(control, "controlid"),
        control_errors=_errors(root),
        auth_status=(_text(authentication, "status") or "").strip().lower() or None,
        auth_errors=_errors(operation),
        userid=_text(authentication, "userid") or None,
        companyid=_text(authentication, "companyid") or None,
        session_timeout=parse_timestamp(_text(authentication, "sessiontimeout")),
        results=results,
        session_id=session_id,
        session_endpoint=endpoint,
    )


__all__ = [
    "IncompleteResponse",
    "ParsedResponse",
    "build_request",
    "build_session_request",
    "check_xml_text",
    "classify_result",
    "function_name",
    "is_transient",
    "parse_response",
    "parse_timestamp",
]
