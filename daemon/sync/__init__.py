"""From ServiceTitan to Intacct: poller, ingestion, workers, sync engine, export gating, connection health."""

from __future__ import annotations

from daemon.sync.engine import SyncEngine, project_fields
from daemon.sync.gate import PRIORITY, ExportGate, Verdict
from daemon.sync.health import ERROR, OK, ConnectionMonitor
from daemon.sync.ingest import Ingestor
from daemon.sync.intacct import IntacctConnection
from daemon.sync.poller import Poller
from daemon.sync.waiters import StateWaiters
from daemon.sync.workers import WorkerPool, leases_renewed

__all__ = [
    "ConnectionMonitor", "ERROR", "ExportGate", "Ingestor", "IntacctConnection", "OK", "PRIORITY", "Poller",
    "StateWaiters", "SyncEngine", "Verdict", "WorkerPool", "leases_renewed", "project_fields",
]
