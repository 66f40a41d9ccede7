"""What a failing database raises: the one tuple the daemon catches to outlive an outage."""

from __future__ import annotations

import asyncpg

# OSError and TimeoutError: the socket; PostgresError: the server said no (or is shutting down);
# InterfaceError: the connection was closed under us; InternalClientError: asyncpg's answer when the
# server ends the session in the middle of an operation ("cannot switch to state 12"), e.g. a restart.
DB_ERRORS = (
    OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, TimeoutError,
)
