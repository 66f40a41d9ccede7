"""Numbered SQL migrations, applied in order under an advisory lock (safe with several replicas).

Each applied migration is recorded with the SHA-256 of its file. At every start the files shipped
with this version are compared with what the database recorded, and the start is refused, with one
line, when a file was edited after it was applied (the database does not hold what the file says)
or when the database has migrations this version does not know (the package was rolled back under a
newer schema: old code must not run on it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from daemon.store.locks import lock_transaction
from daemon.store.queries import queries, sql_file
from daemon.version import VERSION

# Any constant works; it only has to be the same in every replica.
_MIGRATION_LOCK = 7_301_450_001
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
Q = queries()


class SchemaError(Exception):
    """The database's schema and this version's migrations disagree; starting would be unsafe."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        # Line ends normalised: a checkout that turned LF into CRLF did not edit the migration.
        return hashlib.sha256(self.sql.replace("\r\n", "\n").encode()).hexdigest()


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


def check_applied(applied: list[asyncpg.Record], shipped: list[Migration]) -> None:
    """Raise SchemaError when the recorded migrations cannot be the shipped ones."""
    known = {m.version: m for m in shipped}
    newest = max((row["version"] for row in applied), default=0)
    if newest > len(shipped):
        raise SchemaError(
            f"the database schema is at migration {newest}, newer than this st-intacct-sync {VERSION} knows "
            f"(up to {len(shipped)}): run the version that migrated it (or newer), or restore the database "
            "from before that upgrade")
    for row in applied:
        migration = known[row["version"]]
        if row["checksum"] is not None and row["checksum"] != migration.checksum:
            raise SchemaError(
                f"migration {migration.filename} differs from the one applied to this database (checksum "
                f"{row['checksum'][:12]} recorded, {migration.checksum[:12]} now): restore the original file; "
                "a change to the schema needs a new migration")


async def migrate(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> list[Migration]:
    """Apply the migrations this database lacks; returns those applied. Raises SchemaError (see above)."""
    applied: list[Migration] = []
    shipped = available()
    async with conn.transaction():
        await lock_transaction(conn, _MIGRATION_LOCK)
        await conn.execute(Q["create_schema_migrations"])
        await conn.execute(Q["add_migration_checksum"])
        rows = await conn.fetch(Q["applied_migrations"])
        check_applied(rows, shipped)
        done = {row["version"] for row in rows}
        for migration in shipped:
            if migration.version in done:
                await conn.execute(Q["record_migration_checksum"], migration.version, migration.checksum)
                continue
            await conn.execute(migration.sql)
            await conn.execute(Q["record_migration"], migration.version, migration.name, migration.checksum)
            applied.append(migration)
    return applied


async def current_version(conn: asyncpg.Connection) -> int:
    """The newest applied migration (0 for an empty database)."""
    if not await conn.fetchval(Q["has_schema_migrations"]):
        return 0
    return int(await conn.fetchval(Q["schema_version"]))
