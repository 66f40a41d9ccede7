"""RecordError: one frozen value for a failure past the adapters, stored as the same JSON as before."""

from __future__ import annotations

import dataclasses
import json

import pytest

from adapters.errors import ConnectionFailure, PermanentError, TransientError
from daemon.store import RecordError
from daemon.sync.health import safe_error


@pytest.mark.parametrize("exc", [
    ConnectionFailure("login refused", errorno="XL03000006", description="Sign-in information is incorrect",
                      correction="Check the user id and password"),
    PermanentError("refused", errorno="BL01001973", description="", description2="Customer 'C9' is not valid."),
    TransientError("HTTP 503", status=503),
])
def test_the_stored_json_is_the_adapters_fields_unchanged(exc: Exception) -> None:
    fields = exc.as_error_fields()  # type: ignore[attr-defined]
    error = safe_error(exc)
    assert error.as_json() == fields
    assert json.dumps(error.as_json()) == json.dumps(fields)  # same keys, same order
    assert RecordError.from_json(json.dumps(fields)) == error


def test_other_exceptions_are_transient_and_name_their_type() -> None:
    error = safe_error(OSError("connection reset"))
    assert error == RecordError("transient", "OSError: connection reset")
    assert error.as_json() == {"class": "transient", "errorno": None, "description": "OSError: connection reset",
                               "description2": None, "correction": None}


def test_text_is_the_service_words_in_one_line() -> None:
    error = RecordError("permanent", "", "BL01001973", "Customer 'C9' is not valid.", "Pick another")
    assert error.text() == "BL01001973 Customer 'C9' is not valid. Pick another"
    assert RecordError("transient", None).text() is None
    assert RecordError.from_json(None) is None and RecordError.from_json({}) is None


def test_it_is_frozen() -> None:
    error = RecordError("transient", "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        error.description = "y"  # type: ignore[misc]


def test_a_job_failed_for_its_parent_keeps_the_parent_and_its_error_in_the_same_json() -> None:
    from statemachine import State
    from statemachine.order import Parent, parent_verdict

    parent = {"class": "permanent", "errorno": "BL01001973", "description": "", "description2": "bad customer",
              "correction": None}
    verdict = parent_verdict("P-1", Parent("P-1", State.FAILED, in_intacct=False, error=parent))
    error = RecordError.from_json(verdict.error)
    assert error is not None and error.parent == "P-1" and error.parent_error == RecordError.from_json(parent)
    assert json.dumps(error.as_json()) == json.dumps(verdict.error)
