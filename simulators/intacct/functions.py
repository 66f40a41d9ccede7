"""The functions the simulated gateway runs: create, update, readByName, query, getAPISession."""

from __future__ import annotations

import operator
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from simulators.intacct import xmlio
from simulators.intacct.projects import (
    FIELDS,
    GENERIC_ERRORNO,
    Predicate,
    Project,
    ProjectRefused,
    SimError,
    like_to_regex,
)
from simulators.intacct.state import SimState, format_timestamp
from simulators.intacct.xmlio import AuthInfo, Call, Condition, Junction, Request, Result


@dataclass
class Context:
    """What a function needs beyond its own element."""

    state: SimState
    request: Request
    auth: AuthInfo
    endpoint: str  # the gateway URL to announce with a new session


Handler = Callable[[Context, Call], Result]

PROCESSING_ERROR = SimError("DL02000001", description2="There was an error processing the request.")


def _failure(call: Call, *errors: SimError) -> Result:
    return Result("failure", call.name, call.controlid, errors=list(errors))


def _success(call: Call, data: ET.Element | None = None) -> Result:
    return Result("success", call.name, call.controlid, data=data)


def _single_project(call: Call) -> dict[str, str] | Result:
    """The fields of the function's only PROJECT, or the failure that refuses it."""
    objects = xmlio.objects(call)
    if len(objects) != 1:
        # Intacct would apply several objects one by one (a half-done, "failed" function);
        # the simulator refuses the whole function so that the daemon's rule is checked.
        return _failure(
            call,
            SimError(
                GENERIC_ERRORNO,
                description2=f"Found {len(objects)} objects in <{call.name}>: send exactly one PROJECT per function.",
            ),
        )
    tag, fields = objects[0]
    if tag != "PROJECT":
        return _failure(call, SimError(GENERIC_ERRORNO, description2=f"Object '{tag}' is not supported."))
    return fields


def create(ctx: Context, call: Call) -> Result:
    """``<create><PROJECT>``."""
    fields = _single_project(call)
    if isinstance(fields, Result):
        return fields
    try:
        project = ctx.state.projects.create(fields, ctx.state.customers)
    except ProjectRefused as exc:
        if exc.duplicate:
            ctx.state.stats.duplicate_create_attempts += 1
        return _failure(call, *exc.errors)
    ctx.state.stats.creates_applied += 1
    return _success(call, xmlio.objects_data([project]))


def update(ctx: Context, call: Call) -> Result:
    """``<update><PROJECT>`` keyed by PROJECTID; only the fields sent change."""
    fields = _single_project(call)
    if isinstance(fields, Result):
        return fields
    project_id = fields.pop("PROJECTID", "")
    if not project_id:
        return _failure(call, SimError(GENERIC_ERRORNO, description2="PROJECTID is required to update a Project."))
    if not ctx.state.faults.clear_by_empty_element:
        for name in ("PARENTID", "CUSTOMERID"):
            if name in fields and not fields[name]:
                del fields[name]
                ctx.state.stats.faults["empty_clear_ignored"] += 1
    try:
        project = ctx.state.projects.update(project_id, fields, ctx.state.customers)
    except ProjectRefused as exc:
        return _failure(call, *exc.errors)
    ctx.state.stats.updates_applied += 1
    return _success(call, xmlio.objects_data([project]))


def _bad_fields(names: list[str] | tuple[str, ...]) -> list[str]:
    return [name for name in names if name not in FIELDS]


def read_by_name(ctx: Context, call: Call) -> Result:
    """``<readByName>``: missing keys are simply absent (success, count 0)."""
    obj, keys, fields = xmlio.read_by_name(call)
    if obj.strip().upper() != "PROJECT":
        return _failure(call, SimError("XXX", description2=f"Object definition {obj} not found"))
    names = list(FIELDS) if fields == ["*"] else fields
    bad = _bad_fields(names)
    if bad:
        return _failure(call, SimError(f"Invalid fields list {bad[0]}"))
    store = ctx.state.projects
    rows = [row for row in (store.get(key) for key in dict.fromkeys(keys)) if row is not None]
    return _success(call, xmlio.list_data(rows, names, {}))


def query(ctx: Context, call: Call) -> Result:
    """``<query>``: select, filter, orderby, pagesize and offset."""
    try:
        spec = xmlio.query(call)
    except xmlio.QueryError as exc:
        return _failure(call, SimError("Query Failed", description2=str(exc)))
    if spec.object.upper() != "PROJECT":
        return _failure(call, SimError("Query Failed", description2=f"Object definition {spec.object} not found"))
    bad = _bad_fields(spec.select)
    if bad:
        return _failure(call, SimError("Query Failed", description2=f"Invalid field {bad[0]} in select"))
    predicate = compile_condition(spec.condition, spec.case_insensitive) if spec.condition else None
    rows = ctx.state.projects.select((spec.condition, spec.case_insensitive), predicate, spec.order)
    page = rows[spec.offset : spec.offset + spec.pagesize]
    attrs = {
        "totalcount": str(len(rows)),
        "offset": str(spec.offset),
        "numremaining": str(max(0, len(rows) - spec.offset - len(page))),
    }
    return _success(call, xmlio.list_data(page, spec.select, attrs))


def get_api_session(ctx: Context, call: Call) -> Result:
    """``<getAPISession>``: a new session for a login, the same one for a session."""
    state = ctx.state
    state.stats.session_requests += 1
    request = ctx.request
    location = (call.element.findtext("locationid") or "").strip()
    if request.session_id is not None:
        session = state.sessions.get(request.session_id)
        if session is None:  # expired by the control API while this request waited
            return _failure(call, SimError("XL03000006", description2="Invalid session"))
    else:
        assert request.login is not None  # parse_request guarantees a login or a session
        login = request.login
        session = state.open_session(login.userid, login.companyid, location or login.locationid)
        ctx.auth.sessiontimestamp = format_timestamp(session.created)
    if state.faults.announce_session_timeout:
        ctx.auth.sessiontimeout = state.session_timeout(session)
    return _success(call, xmlio.api_data(session.session_id, ctx.endpoint, session.locationid))


def _unsupported(ctx: Context, call: Call) -> Result:
    return _failure(
        call, SimError(GENERIC_ERRORNO, description2=f"Function '{call.name}' is not supported by the simulator.")
    )


HANDLERS: dict[str, Handler] = {
    "create": create,
    "update": update,
    "readByName": read_by_name,
    "query": query,
    "getAPISession": get_api_session,
}


def run(ctx: Context) -> list[Result]:
    """Run every function of the request in order, each on its own (transaction="false")."""
    results = []
    stats = ctx.state.stats
    for call in ctx.request.calls:
        stats.functions[call.name] += 1
        if call.name != "getAPISession" and ctx.state.chance(ctx.state.faults.dl02000001_rate):
            # Intacct's own hiccup on one function: nothing of it applied, the next try works.
            stats.faults["dl02000001"] += 1
            result = _failure(call, PROCESSING_ERROR)
        else:
            result = HANDLERS.get(call.name, _unsupported)(ctx, call)
        if result.status != "success":
            stats.refused_functions += 1
        results.append(result)
    return results


# -- query conditions -----------------------------------------------------------------------------

_ORDERING: dict[str, Callable[[tuple[int, str], tuple[int, str]], bool]] = {
    "lessthan": operator.lt,
    "lessthanorequalto": operator.le,
    "greaterthan": operator.gt,
    "greaterthanorequalto": operator.ge,
}


def compile_condition(condition: Condition, case_insensitive: bool) -> Predicate:
    """A predicate over projects for a parsed ``<filter>`` condition."""
    if isinstance(condition, Junction):
        parts = [compile_condition(c, case_insensitive) for c in condition.parts]
        if condition.op == "and":
            return lambda p: all(f(p) for f in parts)
        return lambda p: any(f(p) for f in parts)
    op, field, values = condition.op, condition.field, condition.values
    if op in ("isnull", "isnotnull"):
        wanted_null = op == "isnull"
        return lambda p: (p.get(field) is None) is wanted_null
    if op in ("like", "notlike"):
        patterns = [like_to_regex(v, case_insensitive=case_insensitive) for v in values]
        negate = op == "notlike"

        def like(p: Project) -> bool:
            value = p.get(field)
            return value is not None and any(r.fullmatch(value) for r in patterns) is not negate

        return like
    fold = _folder(field, case_insensitive)
    wanted = [fold(v) for v in values]
    if op in ("equalto", "in", "notequalto", "notin"):
        members = set(wanted)
        negate = op in ("notequalto", "notin")
        return lambda p: (v := p.get(field)) is not None and (fold(v) in members) is not negate
    compare = _ORDERING[op]
    bound = wanted[0]
    return lambda p: (v := p.get(field)) is not None and compare(fold(v), bound)


def _folder(field: str, case_insensitive: bool) -> Callable[[str], tuple[int, str]]:
    # Comparable keys: RECORDNO compares as a number, the rest as (optionally folded) text.
    if field == "RECORDNO":
        return lambda v: (int(v), "") if v.strip().lstrip("-").isdigit() else (-1, v)
    if case_insensitive:
        return lambda v: (0, v.lower())
    return lambda v: (0, v)
