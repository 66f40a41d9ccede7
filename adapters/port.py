"""The one interface the daemon uses to talk to Sage Intacct, whichever API carries it.

Both the XML gateway client (`adapters.intacct`) and the REST client (`adapters.intacct_rest`)
implement it with the same function specs, result types and error classes (`adapters.errors`), so
nothing above the adapters knows which API is in use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from adapters.intacct.answers import raise_for_result
from adapters.intacct.models import Function, FunctionResult, IntacctProject

# Both clients answer a read or query function with a result of the same classes, so one check
# serves the port: raise the adapter error class of a failed result.
__all__ = ["IntacctPort", "raise_for_result"]


@runtime_checkable
class IntacctPort(Protocol):
    """Create, update, read by PROJECTID, list by PROJECTID pattern, probe."""

    async def execute(self, functions: Sequence[Function], *, priority: bool = False) -> list[FunctionResult]:
        """Run creates, updates, reads and queries; one result per function, in their order.

        Per-record outcomes come back as results (success, already exists, not existing, transient,
        permanent); a failure of the whole call raises ConnectionFailure, TransientError (with
        ``outcome_unknown``) or PermanentError.
        """
        ...

    async def read_projects(self, project_ids: Sequence[str], *, priority: bool = False) -> dict[str, IntacctProject]:
        """The projects among ``project_ids`` that exist, by PROJECTID."""
        ...

    def iter_projects(self, patterns: Sequence[str], page_size: int = ...) -> AsyncIterator[list[IntacctProject]]:
        """Pages of the projects whose PROJECTID is ``like`` one of ``patterns`` (none: all)."""
        ...

    async def probe(self) -> None:
        """A cheap authenticated call; ConnectionFailure when the connection cannot do our work."""
        ...
