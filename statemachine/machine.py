"""The record lifecycle as a `transitions` machine.

The store applies transitions in bulk SQL, so it never instantiates a model per row: it asks this
module which source states a trigger accepts and writes them into its compare-and-set guards.
`Lifecycle` is the same machine wrapped around one record, for code and tests that walk a record
through its states one trigger at a time.
"""

from __future__ import annotations

from functools import cache

from transitions import Machine, MachineError

from statemachine.states import TRANSITIONS, State, Trigger


class InvalidTransition(Exception):
    """A trigger that the state table does not allow from the record's state."""

    def __init__(self, state: State, trigger: Trigger) -> None:
        super().__init__(f"transition {trigger.value!r} is not allowed from state {state.value!r}")
        self.state = state
        self.trigger = trigger


def _transition_dicts() -> list[dict[str, object]]:
    return [
        {"trigger": trigger.value, "source": [s.value for s in sources], "dest": dest.value}
        for trigger, sources, dest in TRANSITIONS
    ]


@cache
def _machine() -> Machine:
    # A model-less machine is enough to answer "what does trigger T do from state S".
    return Machine(
        model=None,
        states=[s.value for s in State],
        transitions=_transition_dicts(),
        initial=State.NEW.value,
        auto_transitions=False,
    )


def next_state(state: State, trigger: Trigger) -> State:
    """The state `trigger` leads to from `state`, or InvalidTransition."""
    found = _machine().get_transitions(trigger=trigger.value, source=state.value)
    if not found:
        raise InvalidTransition(state, trigger)
    dest = found[0].dest
    assert dest is not None  # every transition of the table names its destination
    return State(dest)


@cache
def sources(trigger: Trigger) -> frozenset[State]:
    """Every state from which `trigger` is allowed (the store's compare-and-set guard)."""
    return frozenset(
        State(t.source) for t in _machine().get_transitions(trigger=trigger.value)
    )


def source_values(trigger: Trigger) -> list[str]:
    """`sources(trigger)` as the strings the database stores, sorted for stable SQL parameters."""
    return sorted(s.value for s in sources(trigger))


def destination(trigger: Trigger) -> State:
    """The one destination of `trigger` (every trigger of the table has exactly one)."""
    for t, _sources, dest in TRANSITIONS:
        if t is trigger:
            return dest
    raise KeyError(trigger)


class Lifecycle:
    """One record's lifecycle; triggers are methods, refused ones raise InvalidTransition."""

    state: str

    def __init__(self, state: State = State.NEW) -> None:
        self._machine = Machine(
            model=self,
            states=[s.value for s in State],
            transitions=_transition_dicts(),
            initial=state.value,
            auto_transitions=False,
            model_override=False,
        )

    @property
    def current(self) -> State:
        return State(self.state)

    def fire(self, trigger: Trigger) -> State:
        """Apply `trigger`, returning the new state."""
        try:
            self.trigger(trigger.value)  # type: ignore[attr-defined]  # added by transitions
        except MachineError as exc:
            raise InvalidTransition(self.current, trigger) from exc
        return self.current
