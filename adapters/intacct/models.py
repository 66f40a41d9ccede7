"""Typed values exchanged with the Sage Intacct XML gateway: credentials, function specs, results."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from xml.etree.ElementTree import Element

# The PROJECT fields this adapter writes, in the order the official SDK writes them.
PROJECT_FIELDS: tuple[str, ...] = ("PROJECTID", "NAME", "PROJECTCATEGORY", "PARENTID", "CUSTOMERID", "STATUS")
READ_FIELDS: tuple[str, ...] = ("RECORDNO", "PROJECTID", "NAME", "PARENTID", "CUSTOMERID", "STATUS")
MAX_READ_KEYS = 100
MAX_PAGE_SIZE = 2000
# What a PROJECTID can be: at most 20 characters (Intacct's ID fields), no comma (readByName keys
# travel comma-separated, so such a project could never be read back), no control character and
# no space at either end (Intacct trims them, so the id read back would differ from the one sent).
PROJECTID_MAX_LENGTH = 20
_PROJECTID_FORBIDDEN = re.compile("[,\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def project_id_problem(project_id: str) -> str | None:
    """Why Intacct cannot hold ``project_id`` as a PROJECTID, or None when it can."""
    if not project_id:
        return "it is empty"
    if len(project_id) > PROJECTID_MAX_LENGTH:
        return f"it has {len(project_id)} characters, at most {PROJECTID_MAX_LENGTH} allowed"
    bad = _PROJECTID_FORBIDDEN.search(project_id)
    if bad is not None:
        what = "a comma" if bad.group() == "," else f"the character U+{ord(bad.group()):04X}"
        return f"it holds {what} at position {bad.start() + 1}"
    if project_id != project_id.strip():
        return "it starts or ends with a space"
    return None


@dataclass(frozen=True)
class IntacctCredentials:
    """Web Services sender and company user credentials, plus the gateway URL used to log in."""

    endpoint_url: str
    sender_id: str
    sender_password: str
    company_id: str
    user_id: str
    user_password: str
    entity_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"IntacctCredentials(endpoint_url={self.endpoint_url!r}, sender_id={self.sender_id!r}, "
            f"sender_password='***', company_id={self.company_id!r}, user_id={self.user_id!r}, "
            f"user_password='***', entity_id={self.entity_id!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class ErrorDetail:
    """One ``<error>`` of an ``<errormessage>``; ``errorno`` is sometimes a whole sentence."""

    errorno: str
    description: str
    description2: str
    correction: str

    def text(self) -> str:
        """The non-empty parts joined, for logs and messages."""
        return " ".join(p for p in (self.errorno, self.description, self.description2, self.correction) if p)

    @classmethod
    def from_element(cls, elem: Element) -> ErrorDetail:
        """Read an ``<error>`` element; missing parts become empty strings."""
        return cls(
            errorno=_child_text(elem, "errorno") or "",
            description=_child_text(elem, "description") or "",
            description2=_child_text(elem, "description2") or "",
            correction=_child_text(elem, "correction") or "",
        )


@dataclass(frozen=True)
class IntacctProject:
    """A PROJECT as Intacct returns it; empty or absent fields are None."""

    project_id: str
    record_no: int | None
    name: str | None
    parent_id: str | None
    customer_id: str | None
    status: str | None

    @classmethod
    def from_element(cls, elem: Element) -> IntacctProject:
        """Read a ``<PROJECT>`` or ``<project>`` element (field tags in any case)."""
        values: dict[str, str | None] = {}
        for child in elem:
            text = child.text
            values[child.tag.upper()] = text if text else None
        project_id = values.get("PROJECTID")
        if project_id is None:
            raise ValueError("PROJECT element without PROJECTID")
        record_no: int | None = None
        raw_record_no = values.get("RECORDNO")
        if raw_record_no:
            try:
                record_no = int(raw_record_no)
            except ValueError:
                record_no = None
        return cls(
            project_id=project_id,
            record_no=record_no,
            name=values.get("NAME"),
            parent_id=values.get("PARENTID"),
            customer_id=values.get("CUSTOMERID"),
            status=values.get("STATUS"),
        )


class Outcome(enum.Enum):
    """What one function's result means for the record it carried."""

    SUCCESS = "success"
    ALREADY_EXISTS = "already_exists"
    NOT_EXISTING = "not_existing"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class FunctionResult:
    """One ``<result>``: status, classification, the projects in ``<data>`` and the errors."""

    controlid: str
    function: str
    status: str
    outcome: Outcome
    projects: tuple[IntacctProject, ...] = ()
    errors: tuple[ErrorDetail, ...] = ()
    data_attrs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def error_fields(self) -> dict[str, str | None]:
        """The first meaningful error as a record's ``last_error`` stores it."""
        error_class = "transient" if self.outcome is Outcome.TRANSIENT else "permanent"
        first = next((e for e in self.errors if e.text()), None)
        if first is None:
            return {
                "class": error_class,
                "errorno": "",
                "description": f"function {self.function or '?'} returned status {self.status or '?'}",
                "description2": "",
                "correction": "",
            }
        return {
            "class": error_class,
            "errorno": first.errorno,
            "description": first.description,
            "description2": first.description2,
            "correction": first.correction,
        }


def _check_fields(fields: Mapping[str, str | None], allowed: Sequence[str]) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(f"unsupported PROJECT fields: {', '.join(unknown)}")


def _check_controlid(controlid: str) -> None:
    # The SDKs enforce 1 to 256 characters; Intacct echoes it back to match results.
    if not 1 <= len(controlid) <= 256:
        raise ValueError("a function controlid must have 1 to 256 characters")


@dataclass(frozen=True)
class CreateProject:
    """``<create><PROJECT>``: fields among PROJECT_FIELDS; a None value omits the element."""

    controlid: str
    fields: Mapping[str, str | None]

    def __post_init__(self) -> None:
        _check_controlid(self.controlid)
        _check_fields(self.fields, PROJECT_FIELDS)


@dataclass(frozen=True)
class UpdateProject:
    """``<update><PROJECT>`` keyed by PROJECTID: only changed fields; None sends an empty element (clears)."""

    controlid: str
    project_id: str
    fields: Mapping[str, str | None]

    def __post_init__(self) -> None:
        _check_controlid(self.controlid)
        _check_fields(self.fields, PROJECT_FIELDS[1:])


@dataclass(frozen=True)
class ReadProjects:
    """``<readByName>`` of up to 100 PROJECTIDs."""

    controlid: str
    project_ids: Sequence[str]

    def __post_init__(self) -> None:
        _check_controlid(self.controlid)
        if not 1 <= len(self.project_ids) <= MAX_READ_KEYS:
            raise ValueError(f"readByName takes 1 to {MAX_READ_KEYS} keys, got {len(self.project_ids)}")
        # Keys travel comma-separated: an id holding a comma cannot be read this way.
        if any("," in key or not key for key in self.project_ids):
            raise ValueError("readByName keys must be non-empty and contain no comma")


@dataclass(frozen=True)
class QueryProjects:
    """``<query>`` on PROJECT: PROJECTID ``like`` any of the patterns (none: all), RECORDNO ascending."""

    controlid: str
    patterns: Sequence[str]
    page_size: int = MAX_PAGE_SIZE
    offset: int = 0

    def __post_init__(self) -> None:
        _check_controlid(self.controlid)
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"query pagesize must be 1 to {MAX_PAGE_SIZE}")
        if self.offset < 0:
            raise ValueError("query offset must not be negative")


Function = CreateProject | UpdateProject | ReadProjects | QueryProjects

FUNCTION_NAMES: Mapping[type, str] = MappingProxyType(
    {CreateProject: "create", UpdateProject: "update", ReadProjects: "readByName", QueryProjects: "query"}
)


def function_name(function: Function) -> str:
    """The name Intacct gives the function in its ``<result><function>``."""
    return FUNCTION_NAMES[type(function)]


def _child_text(elem: Element, tag: str) -> str | None:
    child = elem.find(tag)
    return None if child is None else child.text
