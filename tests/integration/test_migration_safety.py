"""Rollbacks are safe: applied migrations carry a checksum, an edited one is refused, and code older than
the schema refuses to start, naming both versions (as a library call here; as `run` and `migrate` in
tests/acceptance/test_upgrades.py)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from daemon.store.migrations import SchemaError, available, migrate
from daemon.store.queries import sql_file
from daemon.version import VERSION

# What 0.1 created: the table without checksums, and two migrations.
SCHEMA_0_1 = ("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
              " applied_at timestamptz NOT NULL DEFAULT now())")


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn)


async def test_each_applied_migration_is_recorded_with_its_checksum(empty_database_dsn: str) -> None:
    conn = await _connect(empty_database_dsn)
    try:
        await migrate(conn)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    files = {m.version: sql_file(f"migrations/{m.filename}") for m in available()}
    assert [(r["version"], r["checksum"]) for r in rows] == [
        (v, hashlib.sha256(text.encode()).hexdigest()) for v, text in sorted(files.items())]


async def test_a_database_migrated_by_0_1_gets_checksums_and_migrates_forward(empty_database_dsn: str) -> None:
    conn = await _connect(empty_database_dsn)
    try:
        await conn.execute(SCHEMA_0_1)
        for m in available()[:2]:
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
        applied = await migrate(conn)
        assert [m.version for m in applied] == [m.version for m in available()[2:]]
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [(r["version"], r["checksum"]) for r in rows] == [(m.version, m.checksum) for m in available()]


async def test_an_edited_migration_is_refused(empty_database_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = await _connect(empty_database_dsn)
    try:
        await migrate(conn)
        shipped = available()
        edited = [replace(m, sql=m.sql + "\nCREATE INDEX sneaky ON records (st_name);\n") if m.version == 1 else m
                  for m in shipped]
        monkeypatch.setattr("daemon.store.migrations.available", lambda: edited)
        with pytest.raises(SchemaError) as caught:
            await migrate(conn)
        assert not await conn.fetchval("SELECT to_regclass('sneaky') IS NOT NULL")
    finally:
        await conn.close()
    message = str(caught.value)
    assert message.startswith(f"migration {shipped[0].filename} differs from the one applied to this database")
    assert shipped[0].checksum[:12] in message and "\n" not in message


async def test_code_older_than_the_schema_refuses(empty_database_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = await _connect(empty_database_dsn)
    try:
        await migrate(conn)
        newest = len(available())
        # What this version would have been before its newest migration existed.
        older: list[Any] = available()[:-1]
        monkeypatch.setattr("daemon.store.migrations.available", lambda: older)
        with pytest.raises(SchemaError) as caught:
            await migrate(conn)
    finally:
        await conn.close()
    assert str(caught.value).startswith(
        f"the database schema is at migration {newest}, newer than this st-intacct-sync {VERSION} knows "
        f"(up to {newest - 1})")
