"""The record states and the transition table, as data (docs/architecture.md, "The record state machine").

Everything else derives from `TRANSITIONS`: the `transitions` machine that validates a move, the
compare-and-set guards the store writes into its SQL, and the diagram in the README.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """A record's persisted state (the values are the Contract's spelling)."""

    NEW = "new"  # not stored: the "(new)" node a record leaves when it is first enqueued
    PENDING = "pending"
    SYNCING = "syncing"
    SYNCED = "synced"
    BLOCKED = "blocked-by-connection"
    FAILED = "failed"


class Trigger(StrEnum):
    """Why a record moves."""

    ENQUEUE = "enqueue"  # first seen in ST (or requested), nothing in Intacct yet known to match
    CHANGE = "change"  # ST (or the settings) changed the desired fields of a settled record
    CLAIM = "claim"  # a worker took a lease on it
    SUCCEED = "succeed"  # Intacct now matches the desired fields
    RETRY_LATER = "retry_later"  # transient error with attempts left, or changed while syncing
    LEASE_EXPIRED = "lease_expired"  # the worker holding it died
    RELEASE = "release"  # a graceful shutdown gave the lease back unused
    FAIL = "fail"  # permanent error, or transient attempts exhausted
    CONNECTION_LOST = "connection_lost"  # the Intacct connection went into error
    CONNECTION_RESTORED = "connection_restored"  # the probe succeeded again
    RETRY = "retry"  # an operator asked for another try
    PARENT_SYNCED = "parent_synced"  # the parent project a job failed for is in Intacct now


# (trigger, sources, destination). Anything not listed is refused.
TRANSITIONS: tuple[tuple[Trigger, tuple[State, ...], State], ...] = (
    (Trigger.ENQUEUE, (State.NEW,), State.PENDING),
    (Trigger.CHANGE, (State.SYNCED, State.FAILED), State.PENDING),
    (Trigger.CLAIM, (State.PENDING,), State.SYNCING),
    (Trigger.SUCCEED, (State.SYNCING,), State.SYNCED),
    (Trigger.RETRY_LATER, (State.SYNCING,), State.PENDING),
    (Trigger.LEASE_EXPIRED, (State.SYNCING,), State.PENDING),
    (Trigger.RELEASE, (State.SYNCING,), State.PENDING),
    (Trigger.FAIL, (State.SYNCING,), State.FAILED),
    (Trigger.CONNECTION_LOST, (State.PENDING, State.SYNCING), State.BLOCKED),
    (Trigger.CONNECTION_RESTORED, (State.BLOCKED,), State.PENDING),
    (Trigger.RETRY, (State.FAILED,), State.PENDING),
    (Trigger.PARENT_SYNCED, (State.FAILED,), State.PENDING),
)

# States a stored record can be in (NEW never is).
STORED_STATES: tuple[State, ...] = tuple(s for s in State if s is not State.NEW)
