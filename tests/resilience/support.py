"""Helpers of the crash and fault suite: figures, database and Intacct inspections.

Every test prints its figures (`pytest -s` shows them) and writes them to
`tests/resilience/.results/<test>.json`, so a CI run keeps what it measured.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.acceptance.harness import Daemon, IntacctSim, Stack, wait_until

RESULTS = Path(__file__).resolve().parent / ".results"


@dataclass
class Figures:
    """What one test measured; `done()` prints it and writes the JSON file."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def update(self, **values: Any) -> None:
        self.values.update(values)

    def done(self) -> dict[str, Any]:
        self.values["duration_s"] = round(time.monotonic() - self.started, 1)
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps(self.values, indent=2, sort_keys=True, default=str) + "\n")
        print(f"\n[resilience] {self.name}: {json.dumps(self.values, sort_keys=True, default=str)}")
        return self.values


# ---- PostgreSQL --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DbFigures:
    """The records table seen from PostgreSQL (read directly: it is the ground truth)."""

    states: dict[str, int]
    max_attempts: int
    attempts: dict[int, int]  # attempts column value → number of records
    claims: dict[int, int]  # claims (pending → syncing in the history) per record → number of records
    retries: dict[int, int]  # "transient error, will retry" transitions per record → number of records
    not_synced: list[tuple[str, int, str, Any]]

    @property
    def max_claims(self) -> int:
        return max(self.claims, default=0)

    @property
    def max_retries(self) -> int:
        return max(self.retries, default=0)

    def public(self) -> dict[str, Any]:
        return {"states": self.states, "max_attempts": self.max_attempts,
                "attempts_distribution": _sorted(self.attempts), "claims_distribution": _sorted(self.claims),
                "max_claims": self.max_claims, "transient_retries_distribution": _sorted(self.retries)}


def _sorted(counter: dict[int, int]) -> dict[str, int]:
    return {str(k): counter[k] for k in sorted(counter)}


async def db_figures(dsn: str) -> DbFigures:
    conn = await asyncpg.connect(dsn, timeout=20)
    try:
        states = {r["state"]: r["n"] for r in await conn.fetch(
            "SELECT state, count(*) AS n FROM records GROUP BY state")}
        attempts = Counter(r["attempts"] for r in await conn.fetch("SELECT attempts FROM records"))
        claims = Counter(r["n"] for r in await conn.fetch(
            "SELECT count(*) FILTER (WHERE to_state = 'syncing') AS n FROM record_history GROUP BY kind, st_id"))
        retries = Counter(r["n"] for r in await conn.fetch(
            "SELECT count(*) FILTER (WHERE reason = 'transient error, will retry') AS n FROM record_history "
            "GROUP BY kind, st_id"))
        not_synced = [(r["kind"], r["st_id"], r["state"], r["last_error"]) for r in await conn.fetch(
            "SELECT kind, st_id, state, last_error FROM records WHERE state <> 'synced' ORDER BY kind, st_id LIMIT 20")]
    finally:
        await conn.close()
    return DbFigures(states, max(attempts, default=0), dict(attempts), dict(claims), dict(retries), not_synced)


async def states(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn, timeout=20)
    try:
        return {r["state"]: r["n"] for r in await conn.fetch(
            "SELECT state, count(*) AS n FROM records GROUP BY state")}
    finally:
        await conn.close()


async def wait_all_synced(dsn: str, total: int, timeout: float, what: str) -> dict[str, int]:
    """Poll PostgreSQL until `total` records are synced (works while no daemon answers HTTP)."""

    async def check() -> dict[str, int] | None:
        try:
            now = await states(dsn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return None
        return now if now.get("synced", 0) == total and sum(now.values()) == total else None

    result: dict[str, int] = await wait_until(check, timeout, what, interval=0.5)
    return result


# ---- Intacct simulator -------------------------------------------------------------------------


@dataclass(frozen=True)
class IntacctFigures:
    """What the Intacct simulator holds, against what it should hold."""

    count: int
    duplicates: int
    lost: list[str]
    extra: list[str]
    projects: dict[str, dict[str, Any]]

    def public(self) -> dict[str, Any]:
        return {"intacct_projects": self.count, "duplicates": self.duplicates, "lost": len(self.lost),
                "unexpected": len(self.extra)}


async def intacct_figures(ia: IntacctSim, expected: Iterable[str]) -> IntacctFigures:
    doc = await ia.call("GET", "/_sim/projects")
    ids = [p["PROJECTID"] for p in doc["projects"]]
    counts = Counter(ids)
    wanted = set(expected)
    return IntacctFigures(
        count=len(ids),
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        lost=sorted(wanted - set(counts)),
        extra=sorted(set(counts) - wanted),
        projects={p["PROJECTID"]: p for p in doc["projects"]},
    )


def fault_figures(stats: dict[str, Any]) -> dict[str, Any]:
    """The simulator counters a test reports."""
    return {
        "requests": stats["requests"],
        "functions": {k: v for k, v in stats["functions"].items() if v},
        "creates_applied": stats["creates_applied"],
        "updates_applied": stats["updates_applied"],
        "duplicate_create_attempts": stats["duplicate_create_attempts"],
        "faults_injected": stats["faults"],
        "auth_failures": stats["auth_failures"],
        "control_failures": stats["control_failures"],
        "max_in_flight": stats["max_in_flight"],
    }


async def daemon_alive(daemon: Daemon) -> bool:
    status, body = await daemon.http.status_and_json("GET", "/livez")
    return status == 200 and body == {"status": "ok"}


async def connection_state(daemon: Daemon) -> str:
    status: str = (await daemon.status())["connections"]["intacct"]["state"]
    return status


def kill9(daemon: Daemon) -> None:
    """kill -9, then reap the process and close its log (`stop` on a dead process only does that)."""
    daemon.proc.kill()
    daemon.proc.stop(10)


__all__ = ["Figures", "Stack", "db_figures", "intacct_figures", "fault_figures", "wait_all_synced", "states",
           "daemon_alive", "connection_state", "kill9", "RESULTS"]
