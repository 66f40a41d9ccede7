"""PostgreSQL: the one class that runs SQL, the typed rows it returns, migrations and advisory locks."""

from __future__ import annotations

from daemon.store.database import DatabaseUnavailable, open_database
from daemon.store.errors import DB_ERRORS
from daemon.store.health import DatabaseHealth
from daemon.store.locks import lock_key, try_lock
from daemon.store.migrations import migrate
from daemon.store.reconcile_rows import (
    CATEGORY_ORDER,
    DRIFT,
    NOT_EXCEPTIONS,
    Category,
    Finding,
    ReportSent,
    RunRecord,
    Tracked,
)
from daemon.store.rows import Finished, Record, RecordKey, RecordUpsert, Requeue, Synced, Transition, UpsertResult, iso
from daemon.store.store import Store

__all__ = [
    "CATEGORY_ORDER", "DB_ERRORS", "Category", "DRIFT", "DatabaseHealth", "DatabaseUnavailable", "Finding",
    "Finished", "NOT_EXCEPTIONS",
    "Record", "RecordKey", "ReportSent", "RecordUpsert", "Requeue", "RunRecord", "Store", "Synced", "Tracked",
    "Transition",
    "UpsertResult", "iso", "lock_key", "try_lock", "migrate", "open_database",
]
