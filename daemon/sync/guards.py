"""What the engine refuses before it talks to Intacct, and how it ends a batch its own code broke.

A PROJECTID Intacct cannot hold (a comma, more than 20 characters, a control character) comes from
the configured template and ServiceTitan's data; sent, it would be refused (or, with a comma, could
never be read back), so the record fails at once with an error naming the template and the value.
An unexpected exception while syncing a batch is a transient failure of each of its records, with
the attempt counted: retried with backoff, failed once `max_attempts` are spent, never a loop.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any

from adapters.intacct import project_id_problem
from daemon.store import Finished, Record
from statemachine import State

# kind ("job" or "project") → the PROJECTID template in force, for the error text.
TemplateOf = Callable[[str], str]


def refuse_bad_project_ids(records: Sequence[Record], template_of: TemplateOf | None) -> list[Finished]:
    """A `failed` end for each record whose PROJECTID Intacct cannot hold."""
    refused: list[Finished] = []
    for r in records:
        problem = project_id_problem(r.intacct_project_id)
        if problem is None:
            continue
        template = template_of(r.kind) if template_of is not None else None
        made = f" made by the template {template!r}" if template else ""
        setting = "mapping.job_project_id" if r.kind == "job" else "mapping.project_project_id"
        error = {
            "class": "permanent",
            "errorno": None,
            "description": f"PROJECTID {r.intacct_project_id[:60]!r}{made} cannot be held by Intacct: {problem}",
            "description2": f"PROJECTID is not valid for {r.kind} {r.st_id}",
            "correction": f"change {setting} or the {r.kind}'s number in ServiceTitan, then retry the record",
        }
        refused.append(Finished(r.key, State.FAILED, "PROJECTID not valid in Intacct", r.desired_hash, error=error))
    return refused


def crash_error(exc: BaseException) -> dict[str, Any]:
    """The record's last error for an exception of our own code: its type, message and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return {
        "class": "transient",
        "errorno": None,
        "description": f"{type(exc).__name__}: {str(exc)[:300]}",
        "description2": f"unexpected error while syncing{where}",
        "correction": None,
    }
