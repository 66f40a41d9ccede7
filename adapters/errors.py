"""The error classes every adapter raises.

The daemon decides what to do with a failure only from its class, so each adapter classifies an
error where it first catches it:

* ``ConnectionFailure``: the connection itself is unusable (bad credentials, locked user, expired
  company, the service unreachable for good). Retrying the same request will not help until an
  operator or the service fixes it; the daemon parks work and probes.
* ``TransientError``: worth retrying later (timeouts, 5xx, rate or concurrency limits). When
  ``outcome_unknown`` is true the request may have been applied (a lost answer), so a create must be
  read back before it is sent again.
* ``PermanentError``: the service refused this record for a reason retrying will not fix.
* ``NotFoundError``: a lookup of something that does not exist.

Messages never contain credentials: adapters build them from status codes and the service's own
error texts, never from request bodies or headers.
"""

from __future__ import annotations

from typing import ClassVar


class AdapterError(Exception):
    """Base class of every error raised by an adapter."""

    error_class: ClassVar[str] = "transient"

    def __init__(
        self,
        message: str,
        *,
        errorno: str | None = None,
        description: str | None = None,
        description2: str | None = None,
        correction: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errorno = errorno
        self.description = description
        self.description2 = description2
        self.correction = correction
        self.status = status

    def as_error_fields(self) -> dict[str, str | None]:
        """The error as the record's ``last_error`` stores it."""
        return {
            "class": self.error_class,
            "errorno": self.errorno,
            "description": self.description if self.description is not None else self.message,
            "description2": self.description2,
            "correction": self.correction,
        }


class ConnectionFailure(AdapterError):
    """The connection is unusable: credentials refused or the service unreachable."""

    error_class = "connection"


class TransientError(AdapterError):
    """A failure worth retrying after a backoff."""

    error_class = "transient"

    def __init__(
        self,
        message: str,
        *,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
        **fields: object,
    ) -> None:
        super().__init__(message, **fields)  # type: ignore[arg-type]
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class PermanentError(AdapterError):
    """The service refused the request for a reason retrying will not fix."""

    error_class = "permanent"


class NotFoundError(PermanentError):
    """The requested object does not exist."""
