"""What new ServiceTitan facts do to a tracked record.

The feed repeats rows and may deliver them out of order, so an upsert is idempotent: a row older
than the one stored is ignored, a pending record is updated in place (coalesced, never duplicated),
and a settled record only goes back to pending when what Intacct should hold has changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from statemachine.states import State, Trigger


class Action(Enum):
    INSERT = "insert"
    UPDATE = "update"
    IGNORE = "ignore"


@dataclass(frozen=True)
class Stored:
    """The parts of a stored record that decide an upsert."""

    state: State
    desired_hash: str
    synced_hash: str | None
    st_modified_on: datetime | None


@dataclass(frozen=True)
class Decision:
    action: Action
    state: State
    trigger: Trigger | None = None  # None: no state change (facts updated in place, or ignored)
    reason: str = ""


def on_facts(stored: Stored | None, desired_hash: str, modified_on: datetime | None) -> Decision:
    """The effect of a (possibly repeated or stale) ST row on the record it describes."""
    if stored is None:
        return Decision(Action.INSERT, State.PENDING, Trigger.ENQUEUE, "new in ServiceTitan")
    if stored.st_modified_on is not None and modified_on is not None:
        if modified_on < stored.st_modified_on:
            return Decision(Action.IGNORE, stored.state, None, "older than the stored row")
        if modified_on == stored.st_modified_on and desired_hash == stored.desired_hash:
            return Decision(Action.IGNORE, stored.state, None, "repeated row")
    newer = stored.st_modified_on is None or modified_on is None or modified_on > stored.st_modified_on
    if stored.state is State.SYNCED and desired_hash != stored.synced_hash:
        return Decision(Action.UPDATE, State.PENDING, Trigger.CHANGE, "changed in ServiceTitan")
    if stored.state is State.FAILED and (desired_hash != stored.desired_hash or newer):
        return Decision(Action.UPDATE, State.PENDING, Trigger.CHANGE, "changed in ServiceTitan")
    # pending: coalesced; syncing: the worker sees the new hash when it finishes; blocked: the
    # desired fields wait with it; synced with the same fields: nothing to send.
    return Decision(Action.UPDATE, stored.state, None, "facts updated")
