"""The shape of the code: one folder per part, and each rule written once.

The layers themselves are import-linter's contracts (pyproject.toml, run by `.ci/run`); these checks
hold what a contract cannot express.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAEMON = REPO / "daemon"


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts)


def test_daemon_holds_at_most_a_dozen_modules_directly() -> None:
    modules = [p.name for p in DAEMON.glob("*.py")]
    assert len(modules) <= 12, modules
    packages = sorted(p.name for p in DAEMON.iterdir() if (p / "__init__.py").exists())
    assert packages == ["cli", "config", "demo", "http", "reconcile", "store", "sync"]


def test_database_errors_are_listed_once() -> None:
    listed = [p.relative_to(REPO) for p in _sources(DAEMON) if "asyncpg.PostgresError" in p.read_text()]
    assert listed == [Path("daemon/store/errors.py")]


def test_advisory_locks_are_taken_in_one_module_with_named_statements() -> None:
    inline = [p.relative_to(REPO) for p in _sources(DAEMON) if re.search(r"pg_\w*advisory", p.read_text())]
    assert inline == []
    users = [p.relative_to(REPO) for p in _sources(DAEMON) if re.search(r"\btry_lock\(|locks\.\w+\(", p.read_text())]
    assert Path("daemon/leader.py") in users and Path("daemon/reconcile/service.py") in users
