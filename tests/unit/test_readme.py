"""The README stays true: its first lines are the two set-up commands, and its state diagram is the
one the state machine generates."""

from __future__ import annotations

from pathlib import Path

from statemachine.diagram import mermaid

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_first_lines_are_the_two_commands() -> None:
    lines = README.splitlines()
    assert lines[0] == "```sh"
    assert lines[1] == "pip install -e '.[embedded]' && st-intacct-sync demo"
    assert lines[2] == "pip install -e '.[test]' && pytest"
    assert lines[3] == "```"


def test_state_diagram_is_generated_from_the_table() -> None:
    start = README.index("```mermaid\n") + len("```mermaid\n")
    end = README.index("```", start)
    assert README[start:end].strip() == mermaid().strip()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci
    assert "\npytest\n" in ci
