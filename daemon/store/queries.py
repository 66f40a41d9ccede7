"""The named SQL statements of `daemon/sql/queries.sql`, loaded once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split a file of `-- name: x` sections into {name: sql}."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        sql = "\n".join(line for line in body.strip().splitlines() if not line.startswith("--")).strip()
        queries[name] = sql.rstrip(";")
    return queries


@cache
def queries() -> dict[str, str]:
    """Every named statement, keyed by name."""
    return parse(resources.files("daemon.store").joinpath("sql/queries.sql").read_text("utf-8"))


def sql_file(name: str) -> str:
    """A file of `daemon/sql/` as text (schema.sql, migrations/NNNN_x.sql)."""
    return resources.files("daemon.store").joinpath(f"sql/{name}").read_text("utf-8")
