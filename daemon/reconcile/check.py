"""How one record is classified, and the plain words that explain it. Pure: no I/O.

Precedence, first match wins, one class per record:

1. `failed`, `blocked`: the local record's state says it all; Intacct is not compared (a failed record
   is never repaired automatically, a blocked one resumes by itself).
2. A record deactivated in ServiceTitan (known from the change feed) that Intacct lacks: `matched`,
   since the daemon never creates inactive projects.
3. Absent in Intacct: `missing_in_intacct` in scope, `outside_scope` otherwise.
4. Present: the fields an update would change (the sync engine's own `changed_fields`, STATUS
   aside: ServiceTitan's lists do not say whether a record is active) in the order
   `parent_mismatch` (costs roll up under the wrong project), `customer_mismatch` (billed to the
   wrong customer), `name_mismatch` (cosmetic). Several differences give one exception of the first
   class; its detail names every difference.
5. Otherwise `matched`.
"""

from __future__ import annotations

from daemon.store import Category, RecordError
from statemachine import Desired, State
from statemachine.desired import changed_fields

# NAME, PARENTID, CUSTOMERID as Intacct holds them.
Observed = tuple[str | None, str | None, str | None]

_FIELD_CLASSES = (("PARENTID", Category.PARENT), ("CUSTOMERID", Category.CUSTOMER), ("NAME", Category.NAME))


def observed_fields(project_id: str, actual: Observed) -> dict[str, str | None]:
    """An index entry as the field dict the desired fields are compared with."""
    return {"PROJECTID": project_id, "NAME": actual[0], "PARENTID": actual[1], "CUSTOMERID": actual[2]}


def differences(desired: Desired, actual: Observed) -> list[Category]:
    """The mismatch classes between what ServiceTitan wants and what Intacct holds, by precedence."""
    diff = changed_fields(desired.fields(), observed_fields(desired.project_id, actual))
    return [category for key, category in _FIELD_CLASSES if key in diff]


def classify(
    desired: Desired, actual: Observed | None, *, state: State | None, active: bool, in_scope: bool
) -> Category:
    """The class of one ServiceTitan record; `state` is its local state (None: not tracked)."""
    if state is State.FAILED:
        return Category.FAILED
    if state is State.BLOCKED:
        return Category.BLOCKED
    if actual is None:
        if not active:
            return Category.MATCHED
        return Category.MISSING if in_scope else Category.OUTSIDE
    found = differences(desired, actual)
    return found[0] if found else Category.MATCHED


# ---- words -------------------------------------------------------------------------------------


def _quoted(value: str | None) -> str:
    return f"“{value}”" if value else "(empty)"


def _or_none(value: str | None, none: str) -> str:
    return value if value else none


def describe(category: Category, desired: Desired, actual: Observed | None, *, kind: str,
             parent_st_id: int | None = None, was_synced: bool = False) -> str:
    """Why a record is an exception, for an accountant."""
    pid = desired.project_id
    if category is Category.MISSING:
        text = f"Intacct has no project {pid}."
        if was_synced:
            text += " It was synced before: it has since been deleted or renamed in Intacct."
        return text
    if actual is None:
        return ""
    parts = []
    for found in differences(desired, actual):
        if found is Category.PARENT:
            want = desired.parent_id
            where = f" (ServiceTitan project {parent_st_id})" if want and parent_st_id else ""
            parts.append(f"Parent project in Intacct is {_or_none(actual[1], 'none')}; ServiceTitan puts this "
                         f"{kind} under {_or_none(want, 'no project')}{where}.")
        elif found is Category.CUSTOMER:
            parts.append(f"Customer in Intacct is {_or_none(actual[2], 'none')}; it should be "
                         f"{_or_none(desired.customer_id, 'none')}.")
        elif found is Category.NAME:
            parts.append(f"Name in Intacct is {_quoted(actual[0])}; ServiceTitan says {_quoted(desired.name)}.")
    return " ".join(parts)


def error_words(error: RecordError | None) -> str:
    """A record's last error as one sentence of the service's own words."""
    text = " ".join(((error.text() if error else None) or "").split())[:300] or "no error text was recorded"
    return text if text.endswith((".", "!", "?")) else text + "."


def record_ref(kind: str, st_id: int) -> str:
    """The command-line option that names a record."""
    return f"--{kind} {st_id}"


class Actions:
    """The action column, in plain words (stored with each exception, shown in every report)."""

    QUEUED_CREATE = "Queued to be created in Intacct."
    QUEUED_RECREATE = "Queued to be created again in Intacct."
    QUEUED_CORRECT = "Queued to be corrected in Intacct."
    ALREADY_QUEUED = "Already waiting to be synced; nothing more to do."
    REPAIR_OFF = "Not repaired: repairs are off for this run."
    ORPHAN = "Left as it is (never deleted automatically): check whether it is still needed."
    BLOCKED = "Waits for the Intacct connection and resumes by itself once it works again."

    @staticmethod
    def outside_scope(kind: str, st_id: int) -> str:
        return (f"Not repaired: last changed in ServiceTitan before automatic sync started; "
                f"`st-intacct-sync sync {record_ref(kind, st_id)}` corrects it.")

    @staticmethod
    def failed(kind: str, st_id: int) -> str:
        return (f"None until someone fixes the cause in Intacct or ServiceTitan; then "
                f"`st-intacct-sync retry {record_ref(kind, st_id)}`.")

    @staticmethod
    def repair_failed(error: str) -> str:
        return f"The repair could not be queued ({error}); the next reconciliation tries again."
