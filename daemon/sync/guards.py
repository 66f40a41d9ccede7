"""What the engine refuses, what it checks after Intacct said yes, and how it ends a batch it broke.

A PROJECTID Intacct cannot hold (a comma, more than 20 characters, a control character) comes from
the configured template and ServiceTitan's data; sent, it would be refused (or, with a comma, could
never be read back), so the record fails at once with an error naming the template and the value.
An update that cleared PARENTID or CUSTOMERID is read back (no SDK clears a field with an empty
element, so the real gateway may ignore it); a value Intacct kept fails the record once, instead of
an update planned again at every pass. An unexpected exception while syncing a batch is a transient
failure of each of its records, with the attempt counted: retried with backoff, failed once
`max_attempts` are spent, never a loop.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence

from adapters.intacct import project_id_problem
from daemon.store import Finished, Record, RecordError
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
        error = RecordError(
            "permanent",
            f"PROJECTID {r.intacct_project_id[:60]!r}{made} cannot be held by Intacct: {problem}",
            description2=f"PROJECTID is not valid for {r.kind} {r.st_id}",
            correction=f"change {setting} or the {r.kind}'s number in ServiceTitan, then retry the record",
        )
        refused.append(Finished(r.key, State.FAILED, "PROJECTID not valid in Intacct", r.desired_hash, error=error))
    return refused


def clear_refused(r: Record, kept: Mapping[str, str | None]) -> Finished:
    """Intacct answered success to an update that cleared these fields, yet still holds them: failed, once."""
    held = ", ".join(f"{f}={v!r}" for f, v in kept.items())
    error = RecordError(
        "permanent", f"Intacct kept {held} after an update that cleared {', '.join(kept)}",
        description2=f"project {r.intacct_project_id} was updated without error, but the field was not "
                     "cleared: the XML gateway may not clear it with an empty element",
        correction=f"clear {', '.join(kept)} of {r.intacct_project_id} in Intacct by hand, then retry")
    return Finished(r.key, State.FAILED, "Intacct did not clear the field", r.desired_hash, error=error)


def crash_error(exc: BaseException) -> RecordError:
    """The record's last error for an exception of our own code: its type, message and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return RecordError("transient", f"{type(exc).__name__}: {str(exc)[:300]}",
                       description2=f"unexpected error while syncing{where}")
