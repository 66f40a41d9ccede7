"""Sage's own OpenAPI documents for the REST API, when a developer has them on disk.

They are not in the repository (they are Sage's documentation). ``ST_INTACCT_SYNC_SAGE_OPENAPI_DIR``
names a directory holding ``project-and-resource-management.json`` and ``common-resources.json`` as
downloaded from developer.sage.com's OpenAPI index. The documents are OpenAPI 3.0: ``nullable`` is
turned into a JSON Schema null type, and references between the two documents become local ones
(both documents' components are merged, the projects document's own names first).
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

ENV = "ST_INTACCT_SYNC_SAGE_OPENAPI_DIR"
FILES = ("project-and-resource-management.json", "common-resources.json")


def missing() -> str | None:
    """Why the documents cannot be used, or None when they can."""
    folder = os.environ.get(ENV)
    if not folder:
        return f"{ENV} is not set (download Sage's {' and '.join(FILES)} into a directory and point it there)"
    absent = [name for name in FILES if not (Path(folder) / name).is_file()]
    return f"{ENV}={folder} lacks {', '.join(absent)}" if absent else None


@cache
def documents() -> dict[str, Any]:
    """Both documents as one: their paths and components merged."""
    folder = Path(os.environ[ENV])
    projects, common = (_local(json.loads((folder / n).read_text(encoding="utf-8"))) for n in FILES)
    merged: dict[str, Any] = {"paths": {**common.get("paths", {}), **projects.get("paths", {})}, "components": {}}
    for part in ("schemas", "responses"):
        merged["components"][part] = {**common.get("components", {}).get(part, {}),
                                      **projects.get("components", {}).get(part, {})}
    return merged


def _local(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _local(v) for k, v in node.items()}
        if isinstance(out.get("$ref"), str) and "#" in out["$ref"]:
            out["$ref"] = "#" + out["$ref"].split("#", 1)[1]
        if out.pop("nullable", False) and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_local(v) for v in node]
    return node


def resolve(node: Any) -> Any:
    """A schema or response with its references followed."""
    while isinstance(node, dict) and "$ref" in node:
        _, part, name = node["$ref"].lstrip("#/").split("/", 2)
        node = documents()["components"][part][name]
    return node


def with_components(schema: Any) -> dict[str, Any]:
    """A schema that can be validated on its own (its references point into the documents)."""
    return {**copy.deepcopy(schema), "components": documents()["components"]}


def read_only_sent(schema: Any, body: Any, path: str = "") -> list[str]:
    """Fields of a request body the documents mark ``readOnly``, at any depth."""
    schema = resolve(schema)
    found: list[str] = []
    if isinstance(schema, dict) and "allOf" in schema:
        for part in schema["allOf"]:
            found += read_only_sent(part, body, path)
        return sorted(set(found))
    if not isinstance(body, dict) or not isinstance(schema, dict):
        return found
    for name, value in body.items():
        prop = resolve(schema.get("properties", {}).get(name, {}))
        if prop.get("readOnly"):
            found.append(f"{path}/{name}")
        else:
            found += read_only_sent(prop, value, f"{path}/{name}")
    return found


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The documented operation of a request (a batch PATCH is checked element by element)."""
    rest = path.removeprefix("/ia/api/v1")
    template = "/objects/projects/project/{key}" if rest.startswith("/objects/projects/project/") else rest
    if (method, template) == ("PATCH", "/objects/projects/project"):
        template = "/objects/projects/project/{key}"
    return template, documents()["paths"][template][method.lower()]
