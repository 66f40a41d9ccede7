"""Parents before jobs: when a job with a PARENTID may go, must wait, or has failed for its parent.

A job whose parent project is on its way (pending, syncing, blocked) waits: Intacct would refuse
its PARENTID. A job whose parent cannot get there by itself does not wait silently: it fails with
an error that names the parent's PROJECTID and says why, and it goes back to pending by itself
(`Trigger.PARENT_SYNCED`) the moment that parent is synced into Intacct.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from statemachine.states import State

# `class` of the error a job fails with because of its parent. The store finds the jobs to send
# back to pending by it when the parent syncs.
PARENT_ERROR_CLASS = "parent"


@dataclass(frozen=True)
class Parent:
    """What a job's ordering depends on of its parent project's record."""

    project_id: str  # the PROJECTID the job carries as PARENTID
    state: State
    in_intacct: bool  # Intacct confirmed it holds this PROJECTID
    active: bool = True
    error: dict[str, Any] | None = None  # the parent's own last error


class Go(Enum):
    READY = "ready"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True)
class Verdict:
    go: Go
    reason: str = ""
    error: dict[str, Any] | None = None


def error_words(error: dict[str, Any] | None) -> str:
    """An Intacct error as one line (its number and texts)."""
    if not error:
        return "no error recorded"
    parts = [error.get(k) for k in ("errorno", "description", "description2", "correction")]
    return " ".join(str(p) for p in parts if p) or "no error recorded"


def _failed(parent_id: str, why: str, parent_error: dict[str, Any] | None) -> Verdict:
    description = f"parent project {parent_id} {why}"
    return Verdict(Go.FAIL, description, {
        "class": PARENT_ERROR_CLASS, "errorno": None, "description": description, "description2": None,
        "correction": "fix the parent project; this job is sent again by itself once the parent is in Intacct",
        "parent": parent_id, "parent_error": parent_error,
    })


def parent_verdict(parent_id: str | None, parent: Parent | None) -> Verdict:
    """Whether a job whose desired PARENTID is `parent_id` may be sent, given its parent's record."""
    if parent_id is None:
        return Verdict(Go.READY)
    if parent is None:
        return _failed(parent_id, "is not tracked (ServiceTitan did not return it)", None)
    if parent.in_intacct and parent.project_id == parent_id:
        return Verdict(Go.READY)
    if parent.state is State.FAILED:
        return _failed(parent_id, f"failed: {error_words(parent.error)}", parent.error)
    if parent.state is State.SYNCED:
        # Settled without being in Intacct: inactive in ServiceTitan, so never created there.
        why = ("is inactive in ServiceTitan and was never created in Intacct" if not parent.active
               else "is not in Intacct")
        return _failed(parent_id, why, None)
    return Verdict(Go.WAIT, f"waiting for parent project {parent_id}")
