"""The JSON control API under ``/_sim/``: inspect and change the company's data, faults and credentials."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

from aiohttp import web

from simulators.intacct.gateway import STATE
from simulators.intacct.projects import WRITABLE, ProjectRefused
from simulators.intacct.state import CREDENTIAL_KEYS, SimCredentials, SimState

# Text the gateway could not write back as XML 1.0 is refused at the door.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

routes = web.RouteTableDef()


def _state(request: web.Request) -> SimState:
    return request.app[STATE]


def _error(cls: type[web.HTTPException], payload: dict[str, object]) -> web.HTTPException:
    return cls(text=json.dumps(payload), content_type="application/json")


def _bad_request(message: str) -> web.HTTPException:
    return _error(web.HTTPBadRequest, {"error": message})


def _not_found(message: str) -> web.HTTPException:
    return _error(web.HTTPNotFound, {"error": message})


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _bad_request("the body must be JSON") from None


def _project_fields(body: object, *, allow_null: bool) -> dict[str, str]:
    """Upper-case Intacct fields from a JSON object; null clears (as an empty element would)."""
    if not isinstance(body, dict):
        raise _bad_request("a project must be a JSON object")
    fields: dict[str, str] = {}
    for key, value in body.items():
        if key == "RECORDNO":
            continue  # assigned by the company
        if key not in WRITABLE:
            raise _bad_request(f"unknown PROJECT field {key!r}; known: {', '.join(WRITABLE)}")
        if value is None:
            if allow_null:
                fields[key] = ""
            continue
        if not isinstance(value, str):
            raise _bad_request(f"field {key!r} must be a string or null")
        if _ILLEGAL_XML.search(value):
            raise _bad_request(f"field {key!r} holds a character XML 1.0 cannot carry")
        fields[key] = value
    return fields


def _refused(exc: ProjectRefused) -> web.HTTPException:
    payload: dict[str, object] = {"error": str(exc), "errors": [asdict(e) for e in exc.errors]}
    if exc.duplicate:
        return _error(web.HTTPConflict, payload)
    if exc.errors and exc.errors[0].errorno.startswith("Cannot update non-existing"):
        return _error(web.HTTPNotFound, payload)
    return _error(web.HTTPBadRequest, payload)


@routes.get("/_sim/projects")
async def list_projects(request: web.Request) -> web.Response:
    """Every project, in RECORDNO order; ``?prefix=`` narrows by PROJECTID."""
    prefix = request.query.get("prefix", "")
    rows = [p.as_dict() for p in _state(request).projects if p.project_id.startswith(prefix)]
    return web.json_response({"count": len(rows), "projects": rows})


@routes.get("/_sim/projects/{project_id}")
async def get_project(request: web.Request) -> web.Response:
    """One project by PROJECTID."""
    project = _state(request).projects.get(request.match_info["project_id"])
    if project is None:
        raise _not_found("no such project")
    return web.json_response(project.as_dict())


@routes.post("/_sim/projects")
async def insert_projects(request: web.Request) -> web.Response:
    """Insert one project (an object) or many (``{"projects": [...]}``) directly, as drift would."""
    state = _state(request)
    body = await _json(request)
    many = isinstance(body, dict) and "projects" in body
    rows = body["projects"] if many else [body]
    if not isinstance(rows, list):
        raise _bad_request("'projects' must be a list")
    created = []
    for row in rows:
        fields = _project_fields(row, allow_null=False)
        fields.setdefault("PROJECTCATEGORY", "Contract")
        try:
            created.append(state.projects.create(fields, state.customers).as_dict())
        except ProjectRefused as exc:
            raise _refused(exc) from None
    if not many:
        return web.json_response(created[0], status=201)
    return web.json_response({"count": len(created), "projects": created}, status=201)


@routes.patch("/_sim/projects/{project_id}")
async def patch_project(request: web.Request) -> web.Response:
    """Change fields directly (rename, re-parent, re-link); null clears a field."""
    state = _state(request)
    fields = _project_fields(await _json(request), allow_null=True)
    fields.pop("PROJECTID", None)
    try:
        project = state.projects.update(request.match_info["project_id"], fields, state.customers)
    except ProjectRefused as exc:
        raise _refused(exc) from None
    return web.json_response(project.as_dict())


@routes.delete("/_sim/projects/{project_id}")
async def delete_project(request: web.Request) -> web.Response:
    """Remove a project (drift: Intacct lost it); its children keep their PARENTID."""
    if not _state(request).projects.delete(request.match_info["project_id"]):
        raise _not_found("no such project")
    return web.Response(status=204)


@routes.post("/_sim/customers")
async def add_customers(request: web.Request) -> web.Response:
    """Add customers: ``{"ids": [...]}`` or ``{"CUSTOMERID": .., "NAME": ..}``."""
    state = _state(request)
    body = await _json(request)
    if isinstance(body, dict) and isinstance(body.get("ids"), list):
        pairs = [(str(i), str(i)) for i in body["ids"]]
    elif isinstance(body, dict) and isinstance(body.get("CUSTOMERID"), str):
        pairs = [(body["CUSTOMERID"], str(body.get("NAME") or body["CUSTOMERID"]))]
    else:
        raise _bad_request('expected {"ids": [...]} or {"CUSTOMERID": ..., "NAME": ...}')
    for customer_id, name in pairs:
        if not customer_id or _ILLEGAL_XML.search(customer_id + name):
            raise _bad_request("customer ids must be non-empty XML text")
        state.customers[customer_id] = name
    return web.json_response({"count": len(state.customers)}, status=201)


@routes.get("/_sim/customers")
async def list_customers(request: web.Request) -> web.Response:
    """Every customer."""
    rows = [{"CUSTOMERID": k, "NAME": v} for k, v in _state(request).customers.items()]
    return web.json_response({"count": len(rows), "customers": rows})


@routes.get("/_sim/faults")
async def get_faults(request: web.Request) -> web.Response:
    """The fault settings in force."""
    return web.json_response(_state(request).faults.as_dict())


@routes.put("/_sim/faults")
async def put_faults(request: web.Request) -> web.Response:
    """Change any subset of the faults; ``expire_sessions_now`` and ``seed`` are actions."""
    state = _state(request)
    body = await _json(request)
    if not isinstance(body, dict):
        raise _bad_request("faults must be a JSON object")
    changes = dict(body)
    expire = changes.pop("expire_sessions_now", False)
    seed = changes.pop("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _bad_request("'seed' must be an integer")
    try:
        state.faults = state.faults.changed(changes)
    except ValueError as exc:
        raise _bad_request(str(exc)) from None
    if seed is not None:
        state.rng.seed(seed)
    if expire:
        state.stats.faults["sessions_expired_now"] += state.expire_sessions()
    return web.json_response(state.faults.as_dict())


@routes.delete("/_sim/faults")
async def reset_faults(request: web.Request) -> web.Response:
    """Back to the start-up faults."""
    state = _state(request)
    state.faults = state.initial_faults()
    return web.json_response(state.faults.as_dict())


@routes.get("/_sim/credentials")
async def get_credentials(request: web.Request) -> web.Response:
    """Which credentials are enforced (never their values)."""
    return web.json_response(_state(request).credentials.public())


@routes.put("/_sim/credentials")
async def put_credentials(request: web.Request) -> web.Response:
    """Replace the enforced credentials (``{}``: accept any); every session is dropped."""
    state = _state(request)
    body = await _json(request)
    if not isinstance(body, dict) or any(k not in CREDENTIAL_KEYS for k in body):
        raise _bad_request(f"expected an object with keys among {', '.join(CREDENTIAL_KEYS)}")
    if any(v is not None and not isinstance(v, str) for v in body.values()):
        raise _bad_request("credential values must be strings or null")
    state.credentials = SimCredentials(**body)
    # Changing a password ends the user's sessions, so that the change is felt at once.
    state.expire_sessions()
    return web.json_response(state.credentials.public())


@routes.get("/_sim/stats")
async def get_stats(request: web.Request) -> web.Response:
    """The counters."""
    state = _state(request)
    return web.json_response(state.stats.as_dict() | {"projects": len(state.projects), "sessions": len(state.sessions)})


@routes.delete("/_sim/stats")
async def reset_stats(request: web.Request) -> web.Response:
    """Zero the counters (the data stays)."""
    state = _state(request)
    in_flight = state.stats.in_flight
    state.stats = type(state.stats)(in_flight=in_flight)
    return web.Response(status=204)


@routes.post("/_sim/reset")
async def reset(request: web.Request) -> web.Response:
    """Back to the start-up state."""
    _state(request).reset()
    return web.Response(status=204)
