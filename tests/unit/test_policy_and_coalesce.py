"""Retry backoff and the upsert rules (coalescing, monotonic modifiedOn)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from statemachine import RetryPolicy, State, Trigger
from statemachine.coalesce import Action, Stored, on_facts

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def test_full_jitter_stays_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_initial=timedelta(seconds=2), backoff_max=timedelta(minutes=10))
    assert [policy.ceiling(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert policy.ceiling(30) == 600
    rng = random.Random(1)
    delays = [policy.delay(5, rng) for _ in range(2000)]
    assert all(0 <= d <= 32 for d in delays)
    assert min(delays) < 2 and max(delays) > 30  # spread over the whole interval, not clustered
    assert policy.ceiling(10_000) == 600  # no overflow for absurd attempt counts


def test_attempt_budget() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.after_transient(1) is Trigger.RETRY_LATER
    assert policy.after_transient(2) is Trigger.RETRY_LATER
    assert policy.after_transient(3) is Trigger.FAIL


def stored(state: State, *, desired: str = "h1", synced: str | None = None,
           modified: datetime | None = T0) -> Stored:
    return Stored(state, desired, synced, modified)


def test_new_record_is_inserted_pending() -> None:
    d = on_facts(None, "h1", T0)
    assert (d.action, d.state, d.trigger) == (Action.INSERT, State.PENDING, Trigger.ENQUEUE)


def test_older_row_never_overwrites_a_newer_one() -> None:
    for state in State:
        if state is State.NEW:
            continue
        d = on_facts(stored(state), "h2", T0 - timedelta(seconds=1))
        assert d.action is Action.IGNORE


def test_repeated_row_is_ignored() -> None:
    assert on_facts(stored(State.PENDING), "h1", T0).action is Action.IGNORE


def test_pending_record_is_coalesced() -> None:
    d = on_facts(stored(State.PENDING), "h2", T0 + timedelta(seconds=1))
    assert (d.action, d.state, d.trigger) == (Action.UPDATE, State.PENDING, None)


def test_synced_record_goes_back_to_pending_only_when_intacct_must_change() -> None:
    later = T0 + timedelta(minutes=1)
    same = on_facts(stored(State.SYNCED, synced="h1"), "h1", later)
    assert (same.state, same.trigger) == (State.SYNCED, None)
    changed = on_facts(stored(State.SYNCED, synced="h1"), "h2", later)
    assert (changed.state, changed.trigger) == (State.PENDING, Trigger.CHANGE)


def test_failed_record_retries_on_any_st_change() -> None:
    d = on_facts(stored(State.FAILED), "h1", T0 + timedelta(minutes=1))
    assert (d.state, d.trigger) == (State.PENDING, Trigger.CHANGE)


def test_blocked_and_syncing_records_keep_their_state() -> None:
    later = T0 + timedelta(minutes=1)
    assert on_facts(stored(State.BLOCKED), "h2", later).state is State.BLOCKED
    assert on_facts(stored(State.SYNCING), "h2", later).state is State.SYNCING
