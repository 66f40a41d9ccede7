"""A record's identity in Intacct: its PROJECTID is fixed once Intacct has it.

The templates (`mapping.*_project_id`) and ServiceTitan's numbers only choose the PROJECTID of a
record that Intacct does not have yet. Once Intacct created it or was found to hold it, exports
reference that PROJECTID: changing it would leave them pointing at nothing, so a template edit or a
renumbering applies to records not yet in Intacct, and the rest keep theirs.
"""

from __future__ import annotations

from dataclasses import replace

from statemachine.desired import Desired


def keep_identity(desired: Desired, confirmed_id: str | None) -> Desired:
    """`desired` under the PROJECTID Intacct already has for the record (if it has one)."""
    if confirmed_id is None or confirmed_id == desired.project_id:
        return desired
    return replace(desired, project_id=confirmed_id)


def same_project(desired: dict[str, str | None], actual: dict[str, str | None]) -> bool:
    """Whether Intacct's `actual` is the very project `desired` describes (same PROJECTID).

    Only then may the difference be sent as an update; another PROJECTID is another project, and
    Intacct has not confirmed the one wanted.
    """
    return (desired.get("PROJECTID") or None) == (actual.get("PROJECTID") or None)
