"""The simulator's own XML reading (defusedxml) and writing (ElementTree).

Deliberately independent of ``adapters.intacct``: a bug in the adapter's XML code must not be
mirrored here, or the tests would agree with it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from simulators.intacct.projects import FIELDS, Project, SimError

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

COMPARISONS = (
    "equalto",
    "notequalto",
    "lessthan",
    "lessthanorequalto",
    "greaterthan",
    "greaterthanorequalto",
    "like",
    "notlike",
    "in",
    "notin",
    "isnull",
    "isnotnull",
)


class SchemaError(Exception):
    """The request is not a well-formed Intacct request (answered with XL03000003)."""


class QueryError(Exception):
    """A query the simulator cannot run (answered as a function failure "Query Failed")."""


@dataclass(frozen=True)
class Comparison:
    """``<like><field/><value/></like>`` and the other comparisons."""

    op: str
    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Junction:
    """``<and>`` or ``<or>`` of conditions."""

    op: str
    parts: tuple[Comparison | Junction, ...]


# Frozen, hence hashable: a condition is part of the query cache key.
Condition = Comparison | Junction


@dataclass(frozen=True)
class Login:
    """The ``<login>`` block of an operation."""

    userid: str
    companyid: str
    password: str
    locationid: str


@dataclass(frozen=True)
class Call:
    """One ``<function>``: its controlid, the name of its only child element, and that element."""

    controlid: str
    name: str
    element: ET.Element


@dataclass(frozen=True)
class Request:
    """A parsed gateway request."""

    sender_id: str
    sender_password: str
    control_id: str
    uniqueid: str
    dtdversion: str
    session_id: str | None
    login: Login | None
    calls: list[Call]


@dataclass(frozen=True)
class QuerySpec:
    """The parts of a ``<query>`` the simulator understands."""

    object: str
    select: tuple[str, ...]
    condition: Condition | None
    order: list[tuple[str, bool]]
    pagesize: int
    offset: int
    case_insensitive: bool


@dataclass
class Result:
    """One ``<result>`` to write."""

    status: str
    function: str
    controlid: str
    data: ET.Element | None = None
    errors: list[SimError] = field(default_factory=list)


@dataclass
class AuthInfo:
    """The ``<authentication>`` block of a successful operation."""

    userid: str
    companyid: str
    locationid: str
    sessiontimestamp: str
    sessiontimeout: str | None


# -- reading ------------------------------------------------------------------------------------


def _required(parent: ET.Element, path: str) -> str:
    element = parent.find(path)
    if element is None:
        raise SchemaError(f"Element '{path}' is missing in <{parent.tag}>.")
    return element.text or ""


def _optional(parent: ET.Element, path: str) -> str:
    element = parent.find(path)
    return "" if element is None else element.text or ""


def parse_request(body: bytes) -> Request:
    """Parse and check the envelope; raises SchemaError for anything Intacct would refuse to parse."""
    try:
        root = DefusedET.fromstring(body, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise SchemaError(f"Fatal Error: {exc}") from None
    if root.tag != "request":
        raise SchemaError(f"Expected root element 'request', found '{root.tag}'.")
    control = root.find("control")
    operation = root.find("operation")
    if control is None or operation is None:
        raise SchemaError("Element 'request' must hold 'control' and 'operation'.")
    authentication = operation.find("authentication")
    content = operation.find("content")
    if authentication is None or content is None:
        raise SchemaError("Element 'operation' must hold 'authentication' and 'content'.")
    session = authentication.find("sessionid")
    login_element = authentication.find("login")
    login = None
    if login_element is not None:
        login = Login(
            userid=_required(login_element, "userid"),
            companyid=_required(login_element, "companyid"),
            password=_required(login_element, "password"),
            locationid=_optional(login_element, "locationid"),
        )
    elif session is None:
        raise SchemaError("Element 'authentication' must hold 'sessionid' or 'login'.")
    calls = []
    for function in content:
        if function.tag != "function":
            raise SchemaError(f"Element '{function.tag}' is not expected in 'content'.")
        controlid = function.get("controlid")
        if not controlid:
            raise SchemaError("Attribute 'controlid' of 'function' is required.")
        children = list(function)
        if len(children) != 1:
            raise SchemaError("Element 'function' must hold exactly one operation.")
        calls.append(Call(controlid, children[0].tag, children[0]))
    return Request(
        sender_id=_required(control, "senderid"),
        sender_password=_required(control, "password"),
        control_id=_required(control, "controlid"),
        uniqueid=_optional(control, "uniqueid") or "false",
        dtdversion=_optional(control, "dtdversion") or "3.0",
        session_id=(session.text or "") if session is not None else None,
        login=login,
        calls=calls,
    )


def objects(call: Call) -> list[tuple[str, dict[str, str]]]:
    """The objects of a ``<create>``/``<update>``: tag and fields (an empty element is "")."""
    return [(obj.tag, {child.tag: child.text or "" for child in obj}) for obj in call.element]


def read_by_name(call: Call) -> tuple[str, list[str], list[str]]:
    """The object, keys and fields of a ``<readByName>``."""
    element = call.element
    keys = [k.strip() for k in _optional(element, "keys").split(",") if k.strip()]
    fields = [f.strip() for f in (_optional(element, "fields") or "*").split(",") if f.strip()]
    return _optional(element, "object"), keys, fields


def _int(element: ET.Element, tag: str, default: int) -> int:
    text = _optional(element, tag).strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"{tag} must be an integer") from None


def query(call: Call) -> QuerySpec:
    """The parts of a ``<query>``; raises QueryError for what the simulator does not support."""
    element = call.element
    select = tuple((f.text or "").strip() for f in element.iterfind("select/field"))
    if not select:
        raise QueryError("select is required: returning all fields is not supported")
    filter_element = element.find("filter")
    condition = None
    if filter_element is not None:
        children = list(filter_element)
        if len(children) != 1:
            raise QueryError("filter must hold exactly one condition")
        condition = _condition(children[0])
    order = []
    for item in element.iterfind("orderby/order"):
        name = _optional(item, "field").strip()
        if name not in FIELDS:
            raise QueryError(f"cannot order by {name!r}")
        order.append((name, item.find("descending") is None))
    pagesize = _int(element, "pagesize", 100)
    offset = _int(element, "offset", 0)
    if not 1 <= pagesize <= 2000:
        raise QueryError("pagesize must be between 1 and 2000")
    if offset < 0:
        raise QueryError("offset must not be negative")
    return QuerySpec(
        object=_optional(element, "object").strip(),
        select=select,
        condition=condition,
        order=order,
        pagesize=pagesize,
        offset=offset,
        case_insensitive=_optional(element, "options/caseinsensitive").strip().lower() == "true",
    )


def _condition(element: ET.Element) -> Condition:
    if element.tag in ("and", "or"):
        children = tuple(_condition(child) for child in element)
        if not children:
            raise QueryError(f"{element.tag} needs at least one condition")
        return Junction(element.tag, children)
    if element.tag not in COMPARISONS:
        raise QueryError(f"unsupported filter operator {element.tag!r}")
    name = _optional(element, "field").strip()
    if name not in FIELDS:
        raise QueryError(f"unknown field {name!r} in filter")
    values = tuple(v.text or "" for v in element.iterfind("value"))
    if element.tag not in ("isnull", "isnotnull") and not values:
        raise QueryError(f"{element.tag} needs a value")
    return Comparison(element.tag, name, values)


# -- writing ------------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def render(root: ET.Element) -> bytes:
    """Serialize a response document as UTF-8 with a declaration."""
    text = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    # A CR in stored text must survive the client's parser, which would turn a raw CR into LF.
    return _DECLARATION + text.encode("utf-8").replace(b"\r", b"&#13;")


def _control(root: ET.Element, status: str, request: Request | None) -> None:
    control = _sub(root, "control")
    _sub(control, "status", status)
    _sub(control, "senderid", request.sender_id if request else "")
    _sub(control, "controlid", request.control_id if request else "")
    _sub(control, "uniqueid", request.uniqueid if request else "false")
    _sub(control, "dtdversion", request.dtdversion if request else "3.0")


def _errormessage(parent: ET.Element, errors: Sequence[SimError]) -> None:
    message = _sub(parent, "errormessage")
    for error in errors:
        element = _sub(message, "error")
        _sub(element, "errorno", error.errorno)
        _sub(element, "description", error.description)
        _sub(element, "description2", error.description2)
        _sub(element, "correction", error.correction)


def control_failure(request: Request | None, errors: Sequence[SimError]) -> bytes:
    """A control-level failure: nothing ran."""
    root = ET.Element("response")
    _control(root, "failure", request)
    _errormessage(root, errors)
    return render(root)


def gateway_failure(errorno: str, description: str) -> bytes:
    """The short body the gateway sends with HTTP 401/429."""
    root = ET.Element("response")
    _sub(_sub(root, "control"), "status", "failure")
    error = _sub(_sub(root, "errormessage"), "error")
    _sub(error, "errorno", errorno)
    _sub(error, "description", description)
    return render(root)


def auth_failure(request: Request, errors: Sequence[SimError], userid: str, companyid: str) -> bytes:
    """An operation whose authentication failed: no function ran."""
    root = ET.Element("response")
    _control(root, "success", request)
    operation = _sub(root, "operation")
    authentication = _sub(operation, "authentication")
    _sub(authentication, "status", "failure")
    _sub(authentication, "userid", userid)
    _sub(authentication, "companyid", companyid)
    _errormessage(operation, errors)
    return render(root)


def response(request: Request, auth: AuthInfo, results: Sequence[Result]) -> bytes:
    """A response with authentication success and one ``<result>`` per function."""
    root = ET.Element("response")
    _control(root, "success", request)
    operation = _sub(root, "operation")
    authentication = _sub(operation, "authentication")
    _sub(authentication, "status", "success")
    _sub(authentication, "userid", auth.userid)
    _sub(authentication, "companyid", auth.companyid)
    _sub(authentication, "locationid", auth.locationid)
    _sub(authentication, "sessiontimestamp", auth.sessiontimestamp)
    if auth.sessiontimeout is not None:
        _sub(authentication, "sessiontimeout", auth.sessiontimeout)
    for result in results:
        element = _sub(operation, "result")
        _sub(element, "status", result.status)
        _sub(element, "function", result.function)
        _sub(element, "controlid", result.controlid)
        if result.data is not None:
            element.append(result.data)
        if result.errors:
            _errormessage(element, result.errors)
    return render(root)


def objects_data(rows: Sequence[Project]) -> ET.Element:
    """``<data listtype="objects">`` as a create or update answers it."""
    data = ET.Element("data", {"listtype": "objects", "count": str(len(rows))})
    for row in rows:
        project = _sub(data, "project")
        _sub(project, "RECORDNO", str(row.recordno))
        _sub(project, "PROJECTID", row.project_id)
    return data


def list_data(rows: Sequence[Project], fields: Sequence[str], attrs: dict[str, str]) -> ET.Element:
    """``<data listtype="PROJECT" ...>`` with the selected fields of each row."""
    data = ET.Element("data", {"listtype": "PROJECT", "count": str(len(rows)), **attrs})
    for row in rows:
        project = _sub(data, "PROJECT")
        for name in fields:
            _sub(project, name, row.get(name) or "")
    return data


def api_data(session_id: str, endpoint: str, locationid: str) -> ET.Element:
    """The ``<data><api>`` of a getAPISession result."""
    data = ET.Element("data")
    api = _sub(data, "api")
    _sub(api, "sessionid", session_id)
    _sub(api, "endpoint", endpoint)
    _sub(api, "locationid", locationid)
    return data
