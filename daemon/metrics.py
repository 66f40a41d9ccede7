"""Prometheus metrics (served at /metrics), on a registry of the daemon's own rather than the global one.

Served through prometheus_client's own exposition (`choose_encoder`: the text format with its
versioned content type, or OpenMetrics when the scraper asks for it), with the process collectors
(memory, CPU, open file descriptors) and what the shipped alert rules (prometheus/alerts.yml) need.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from daemon.store import CATEGORY_ORDER, NOT_EXCEPTIONS, Transition
from daemon.version import VERSION
from statemachine import STORED_STATES, State

PREFIX = "st_intacct_sync"
# The *_created series double the output for no operator value.
disable_created_metrics()
EXCEPTION_CLASSES = tuple(c.value for c in CATEGORY_ORDER if c not in NOT_EXCEPTIONS)


class Metrics:
    """Every metric the daemon exports."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Info(f"{PREFIX}_build", "The running version", registry=r).info(
            {"version": VERSION, "python": platform.python_version()})
        self.records = Gauge(f"{PREFIX}_records", "Records by state", ["state"], registry=r)
        self.syncs = Counter(f"{PREFIX}_syncs", "Claims ended, by result", ["result"], registry=r)
        self.intacct_requests = Counter(
            f"{PREFIX}_intacct_requests", "HTTP requests to Intacct by outcome", ["outcome"], registry=r)
        self.intacct_seconds = Histogram(
            f"{PREFIX}_intacct_request_seconds", "Duration of Intacct HTTP requests",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60), registry=r)
        self.servicetitan_requests = Counter(
            f"{PREFIX}_servicetitan_requests", "HTTP requests to ServiceTitan by outcome", ["outcome"], registry=r)
        self.rejected_rows = Counter(
            f"{PREFIX}_servicetitan_rejected_rows", "ServiceTitan rows skipped as unusable, by feed", ["feed"],
            registry=r)
        self.poll_lag = Gauge(
            f"{PREFIX}_poll_lag_seconds", "Seconds since the change feeds were last read to their end", registry=r)
        self.oldest_pending_age = Gauge(
            f"{PREFIX}_oldest_pending_age_seconds", "Age of the oldest record waiting for a worker (0: none)",
            registry=r)
        self.last_reconcile = Gauge(
            f"{PREFIX}_last_reconcile_timestamp_seconds", "Unix time of the last successful reconciliation",
            registry=r)
        self.reconcile_interval = Gauge(
            f"{PREFIX}_reconcile_interval_seconds", "reconcile.interval (for alerts on missed runs)", registry=r)
        self.reconcile_exceptions = Gauge(
            f"{PREFIX}_reconcile_exceptions", "Exceptions found by the last successful reconciliation, by class",
            ["class"], registry=r)
        self.connection_up = Gauge(
            f"{PREFIX}_connection_up", "1 when the connection is usable, by system", ["system"], registry=r)
        self.database_up = Gauge(f"{PREFIX}_database_up", "1 when PostgreSQL answers", registry=r)
        self.leader = Gauge(
            f"{PREFIX}_leader", "1 on the replica that polls and reconciles this tenant", registry=r)
        self.emails = Counter(f"{PREFIX}_emails", "Report emails by result (sent, failed)", ["result"], registry=r)
        self.ensure_seconds = Histogram(
            f"{PREFIX}_ensure_seconds", "Duration of POST /v1/ensure and `sync` until answered",
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300), registry=r)
        for state in STORED_STATES:
            self.records.labels(state=state.value)
        for system in ("intacct", "servicetitan"):
            self.connection_up.labels(system=system)
        for cls in EXCEPTION_CLASSES:
            self.reconcile_exceptions.labels(**{"class": cls})
        for result in ("sent", "failed"):
            self.emails.labels(result=result)

    def observe_intacct(self, outcome: str, seconds: float) -> None:
        """The Intacct adapter's per-request observer."""
        self.intacct_requests.labels(outcome=outcome).inc()
        self.intacct_seconds.observe(seconds)

    def observe_servicetitan(self, outcome: str, _seconds: float) -> None:
        self.servicetitan_requests.labels(outcome=outcome).inc()

    def count_rejected_row(self, feed: str) -> None:
        """The poller skipped a row it could not take in."""
        self.rejected_rows.labels(feed=feed).inc()

    def on_transitions(self, transitions: Sequence[Transition]) -> None:
        """Count claims that ended (the store's transition listener)."""
        for t in transitions:
            if t.from_state == State.SYNCING:
                result = {State.SYNCED: "synced", State.FAILED: "failed", State.BLOCKED: "blocked"}.get(
                    State(t.to_state), "retry"
                )
                self.syncs.labels(result=result).inc()

    def set_counts(self, counts: dict[str, int]) -> None:
        for state, n in counts.items():
            self.records.labels(state=state).set(n)

    def set_reconcile(self, run: Mapping[str, Any]) -> None:
        """The last run as /v1/reconcile/latest shows it; a failed run leaves the last good figures."""
        if run.get("status") != "done" or not run.get("finished_at"):
            return
        self.last_reconcile.set(datetime.fromisoformat(str(run["finished_at"]).replace("Z", "+00:00")).timestamp())
        counts = run.get("counts") or {}
        for cls in EXCEPTION_CLASSES:
            self.reconcile_exceptions.labels(**{"class": cls}).set(int(counts.get(cls, 0)))

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition for a scraper's Accept header: (body, content type)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
