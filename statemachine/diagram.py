"""The state diagram as Mermaid text, generated from the transition table for the README."""

from __future__ import annotations

from statemachine.states import TRANSITIONS, State


def _node(state: State) -> str:
    return "[*]" if state is State.NEW else state.value.replace("-", "_")


def mermaid() -> str:
    """A `stateDiagram-v2` of every allowed transition."""
    lines = ["stateDiagram-v2"]
    for state in State:
        if state is not State.NEW and "-" in state.value:
            lines.append(f'    state "{state.value}" as {_node(state)}')
    for trigger, sources, dest in TRANSITIONS:
        for source in sources:
            lines.append(f"    {_node(source)} --> {_node(dest)}: {trigger.value}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(mermaid())
