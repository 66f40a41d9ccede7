"""PostgreSQL: the store of one tenant's records, the typed rows it returns, migrations, advisory locks."""

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
from daemon.store.rows import (
    Finished,
    Record,
    RecordError,
    RecordKey,
    RecordUpsert,
    Requeue,
    Synced,
    Transition,
    UpsertResult,
    error_json,
    iso,
)
from daemon.store.store import Store

__all__ = [
    "CATEGORY_ORDER", "Category", "DB_ERRORS", "DRIFT", "DatabaseHealth", "DatabaseUnavailable", "Finding",
    "Finished", "NOT_EXCEPTIONS", "Record", "RecordError", "RecordKey", "RecordUpsert", "ReportSent", "Requeue",
    "RunRecord", "Store", "Synced", "Tracked", "Transition", "UpsertResult", "error_json", "iso", "lock_key",
    "migrate", "open_database", "try_lock",
]
