"""Prometheus metrics (DESIGN.md §9), on a registry of the daemon's own rather than the global one."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from daemon.store import Transition
from statemachine import STORED_STATES, State

PREFIX = "st_intacct_sync"
# The *_created series double the output for no operator value.
disable_created_metrics()


class Metrics:
    """Every metric the daemon exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.records = Gauge(f"{PREFIX}_records", "Records by state", ["state"], registry=self.registry)
        self.syncs = Counter(f"{PREFIX}_syncs", "Claims ended, by result", ["result"], registry=self.registry)
        self.intacct_requests = Counter(
            f"{PREFIX}_intacct_requests", "HTTP requests to Intacct by outcome", ["outcome"], registry=self.registry
        )
        self.intacct_seconds = Histogram(
            f"{PREFIX}_intacct_request_seconds",
            "Duration of Intacct HTTP requests",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.servicetitan_requests = Counter(
            f"{PREFIX}_servicetitan_requests", "HTTP requests to ServiceTitan by outcome", ["outcome"],
            registry=self.registry,
        )
        self.rejected_rows = Counter(
            f"{PREFIX}_servicetitan_rejected_rows", "ServiceTitan rows skipped as unusable, by feed", ["feed"],
            registry=self.registry,
        )
        self.poll_lag = Gauge(
            f"{PREFIX}_poll_lag_seconds", "Seconds since the change feeds were last read to their end",
            registry=self.registry,
        )
        self.last_reconcile = Gauge(
            f"{PREFIX}_last_reconcile_timestamp_seconds", "Unix time of the last finished reconciliation",
            registry=self.registry,
        )
        self.connection_up = Gauge(
            f"{PREFIX}_connection_up", "1 when the connection is usable, by system", ["system"],
            registry=self.registry,
        )
        for state in STORED_STATES:
            self.records.labels(state=state.value)
        for system in ("intacct", "servicetitan"):
            self.connection_up.labels(system=system)

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
