"""Numbered migrations and schema.sql describe the same schema, and migrating is idempotent."""

from __future__ import annotations

import asyncpg

from daemon.store.migrations import available, current_version, migrate
from daemon.store.queries import queries, sql_file

CATALOG = """
SELECT 'column' AS what, table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
       || ' ' || coalesce(column_default, '') AS def
FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'schema_migrations'
ORDER BY 1, 2
"""


async def _catalog(dsn: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [(r["what"], r["def"]) for r in await conn.fetch(CATALOG)]
    finally:
        await conn.close()


async def test_migrations_equal_schema_sql(database_dsn: str, empty_database_dsn: str) -> None:
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        await conn.execute(sql_file("schema.sql"))
    finally:
        await conn.close()
    migrated, from_schema = await _catalog(database_dsn), await _catalog(empty_database_dsn)
    assert migrated and migrated == from_schema


async def test_migrate_is_idempotent(empty_database_dsn: str) -> None:
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        assert await current_version(conn) == 0
        first = await migrate(conn)
        assert [m.version for m in first] == [m.version for m in available()]
        assert await migrate(conn) == []
        assert await current_version(conn) == len(available())
    finally:
        await conn.close()


async def test_every_named_query_prepares(database_dsn: str) -> None:
    """A typo in queries.sql fails here, not in production."""
    conn = await asyncpg.connect(database_dsn)
    try:
        for name, sql in queries().items():
            try:
                await conn.prepare(sql)
            except asyncpg.PostgresError as exc:  # pragma: no cover - the assertion message is the point
                raise AssertionError(f"query {name} does not prepare: {exc}") from exc
    finally:
        await conn.close()
