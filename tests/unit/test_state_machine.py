"""Every allowed transition works and every other one is refused (docs/architecture.md, "The record state machine")."""

from __future__ import annotations

import itertools

import pytest

from statemachine import TRANSITIONS, InvalidTransition, Lifecycle, State, Trigger, next_state, sources
from statemachine.diagram import mermaid

ALLOWED = {(src, trig): dest for trig, srcs, dest in TRANSITIONS for src in srcs}

EXPECTED = {
    (State.NEW, Trigger.ENQUEUE): State.PENDING,
    (State.PENDING, Trigger.CLAIM): State.SYNCING,
    (State.SYNCING, Trigger.SUCCEED): State.SYNCED,
    (State.SYNCING, Trigger.RETRY_LATER): State.PENDING,
    (State.SYNCING, Trigger.LEASE_EXPIRED): State.PENDING,
    (State.SYNCING, Trigger.RELEASE): State.PENDING,
    (State.SYNCING, Trigger.FAIL): State.FAILED,
    (State.SYNCING, Trigger.CONNECTION_LOST): State.BLOCKED,
    (State.PENDING, Trigger.CONNECTION_LOST): State.BLOCKED,
    (State.BLOCKED, Trigger.CONNECTION_RESTORED): State.PENDING,
    (State.SYNCED, Trigger.CHANGE): State.PENDING,
    (State.FAILED, Trigger.CHANGE): State.PENDING,
    (State.FAILED, Trigger.RETRY): State.PENDING,
    (State.FAILED, Trigger.PARENT_SYNCED): State.PENDING,
}


def test_table_is_exactly_the_design_diagram() -> None:
    assert ALLOWED == EXPECTED


@pytest.mark.parametrize(("source", "trigger"), sorted(EXPECTED, key=str))
def test_allowed_transition(source: State, trigger: Trigger) -> None:
    assert next_state(source, trigger) is EXPECTED[(source, trigger)]
    machine = Lifecycle(source)
    assert machine.fire(trigger) is EXPECTED[(source, trigger)]
    assert machine.current is EXPECTED[(source, trigger)]


REFUSED = [pair for pair in itertools.product(State, Trigger) if pair not in EXPECTED]


@pytest.mark.parametrize(("source", "trigger"), REFUSED, ids=[f"{s.value}-{t.value}" for s, t in REFUSED])
def test_every_other_transition_is_refused(source: State, trigger: Trigger) -> None:
    with pytest.raises(InvalidTransition):
        next_state(source, trigger)
    machine = Lifecycle(source)
    with pytest.raises(InvalidTransition):
        machine.fire(trigger)
    assert machine.current is source  # a refused trigger leaves the record where it was


def test_refused_count_is_the_complement() -> None:
    assert len(REFUSED) == len(State) * len(Trigger) - len(EXPECTED)


def test_sources_are_the_compare_and_set_guards() -> None:
    assert sources(Trigger.CLAIM) == {State.PENDING}
    assert sources(Trigger.CONNECTION_LOST) == {State.PENDING, State.SYNCING}
    assert sources(Trigger.CHANGE) == {State.SYNCED, State.FAILED}


def test_a_record_walks_the_happy_and_the_unhappy_path() -> None:
    m = Lifecycle()
    for trigger, state in [
        (Trigger.ENQUEUE, State.PENDING),
        (Trigger.CLAIM, State.SYNCING),
        (Trigger.CONNECTION_LOST, State.BLOCKED),
        (Trigger.CONNECTION_RESTORED, State.PENDING),
        (Trigger.CLAIM, State.SYNCING),
        (Trigger.FAIL, State.FAILED),
        (Trigger.RETRY, State.PENDING),
        (Trigger.CLAIM, State.SYNCING),
        (Trigger.SUCCEED, State.SYNCED),
        (Trigger.CHANGE, State.PENDING),
    ]:
        assert m.fire(trigger) is state


def test_diagram_lists_every_transition() -> None:
    text = mermaid()
    assert text.startswith("stateDiagram-v2")
    arrows = [line for line in text.splitlines() if "-->" in line]
    assert len(arrows) == len(EXPECTED)
    assert "syncing --> blocked_by_connection: connection_lost" in text
