"""Numbered SQL migrations, applied in order under an advisory lock (safe with several replicas)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from daemon.store.locks import lock_transaction
from daemon.store.queries import sql_file

# Any constant works; it only has to be the same in every replica.
_MIGRATION_LOCK = 7_301_450_001
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("daemon.store").joinpath("sql/migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], sql_file(f"migrations/{entry.name}")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps, found {versions}")
    return found


async def migrate(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> list[Migration]:
    """Apply the migrations this database lacks; returns those applied."""
    applied: list[Migration] = []
    async with conn.transaction():
        await lock_transaction(conn, _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in available():
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration)
    return applied


async def current_version(conn: asyncpg.Connection) -> int:
    """The newest applied migration (0 for an empty database)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
