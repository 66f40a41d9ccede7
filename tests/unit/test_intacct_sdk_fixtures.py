"""Every response document of the official Sage Intacct SDKs' test suites, classified by the adapter.

The expected class of each document is derived from what the official PHP SDK does with it (recorded
in the fixtures' ``index.json``), translated into the adapter's rules:

* the SDK's ``IntacctException`` (not a complete response) and an offline acknowledgement (a control
  block without an operation: we never send asynchronous requests) → transient, outcome unknown;
* a control failure → a connection error, except Intacct's ``XL03000003`` (a permanent refusal of the
  request) and, under session authentication, the gateway's ``XMLGW_JPP0002`` (the session is dead);
* an authentication failure → a connection error at login, a dead session under a session;
* results → one outcome per function from the batch status: success, failure → permanent (unless
  the rules below say otherwise), aborted → transient.

Each document is read under login and under session authentication, with every HTTP status the
SDK's own test serves it with. Nothing but the adapter's error classes may escape.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import AdapterError, ConnectionFailure, PermanentError, TransientError
from adapters.intacct.answers import SessionDead, read_answer

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "intacct-sdk"
INDEX: list[dict[str, Any]] = json.loads((ROOT / "index.json").read_text())

# Where the SDK's verdict alone does not give the adapter's class, and why.
OVERRIDES: dict[str, str] = {
    # A duplicate PROJECTID on create: "exists, read it and update it if it differs".
    "jfcote87/098-execFuncError.xml": "ok: create:already_exists",
}


def observed(status: int, body: bytes, *, session_auth: bool) -> str:
    """The adapter's class of one answer, as a label."""
    try:
        parsed = read_answer(status, body, {}, session_auth=session_auth)
    except SessionDead:
        return "session_dead"
    except ConnectionFailure:
        return "connection"
    except PermanentError:
        return "permanent_request"
    except TransientError as exc:
        return "unknown_outcome" if exc.outcome_unknown else "transient"
    outcomes = "; ".join(f"{r.function}:{r.outcome.value}" for r in parsed.results)
    return f"ok: {outcomes}"


_RESULT_STATUS = {"success": "success", "failure": "permanent", "aborted": "transient"}


def expected(entry: dict[str, Any], status: int, *, session_auth: bool) -> str:
    """The adapter's class of one document, from the official SDK's verdict on it."""
    if entry["file"] in OVERRIDES:
        return OVERRIDES[entry["file"]]
    verdict: str = entry["official_sdk"][str(status)]
    batch: str = entry["official_sdk_batch"][str(status)]
    if verdict.startswith(("IntacctException", "ok(offline)")):
        return "unknown_outcome"
    if verdict.startswith("ResponseException: Response control status failure"):
        if "XL03000003" in verdict:
            return "permanent_request"
        if "XMLGW_JPP0002" in verdict and session_auth:
            return "session_dead"
        return "connection"
    if verdict.startswith("ResponseException: Response authentication status failure"):
        return "session_dead" if session_auth else "connection"
    assert batch.startswith("ok: "), batch
    pairs = [item.rsplit(":", 1) for item in batch[4:].split("; ")]
    return "ok: " + "; ".join(f"{function}:{_RESULT_STATUS[result]}" for function, result in pairs)


CASES = [
    pytest.param(entry, status, session_auth, id=f"{entry['file']}-{status}-{'session' if session_auth else 'login'}")
    for entry in INDEX
    for status in entry["http_status"]
    for session_auth in (False, True)
]


def test_the_fixture_set_is_whole() -> None:
    files = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.xml"))
    assert len(INDEX) == 107
    assert files == sorted(entry["file"] for entry in INDEX)
    assert (ROOT / "licenses" / "Apache-2.0-intacct-sdks.txt").is_file()
    assert (ROOT / "licenses" / "BSD-3-Clause-jfcote87-intacct.txt").is_file()


@pytest.mark.parametrize(("entry", "status", "session_auth"), CASES)
def test_each_sdk_document_is_classified_by_the_rules(entry: dict[str, Any], status: int, session_auth: bool) -> None:
    body = (ROOT / entry["file"]).read_bytes()
    try:
        got = observed(status, body, session_auth=session_auth)
    except AdapterError as exc:  # pragma: no cover - observed() maps every class
        pytest.fail(f"unmapped adapter error {type(exc).__name__}: {exc}")
    assert got == expected(entry, status, session_auth=session_auth)


def test_the_classes_over_the_whole_set() -> None:
    # 107 documents, two of them served with 200 and 401: 109 answers per authentication mode. The
    # tally shows a change in the rules as a whole.
    answers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for entry in INDEX:
        for status in entry["http_status"]:
            for session_auth in (False, True):
                label = observed(status, (ROOT / entry["file"]).read_bytes(), session_auth=session_auth)
                mode = "session" if session_auth else "login"
                answers[f"{mode} {'ok' if label.startswith('ok: ') else label}"] += 1
                if label.startswith("ok: ") and session_auth:
                    functions.update(part.rsplit(":", 1)[1] for part in label[4:].split("; "))
    assert answers == {
        "login ok": 61,
        "login unknown_outcome": 32,
        "login connection": 15,
        "login permanent_request": 1,
        "session ok": 61,
        "session unknown_outcome": 32,
        "session session_dead": 10,
        "session connection": 5,
        "session permanent_request": 1,
    }
    assert functions == {"success": 53, "permanent": 13, "transient": 5, "already_exists": 1}


# -- PROJECT-era answers known from Intacct (and what stands in front of it) -----------------------

CONTROL_OK = "<control><status>success</status></control>"
AUTH_OK = "<authentication><status>success</status><userid>u</userid><companyid>c</companyid></authentication>"


def _result(function: str, status: str, errorno: str = "", description2: str = "") -> bytes:
    errors = (
        f"<errormessage><error><errorno>{errorno}</errorno><description></description>"
        f"<description2>{description2}</description2><correction></correction></error></errormessage>"
        if errorno or description2
        else ""
    )
    return (
        f"<response>{CONTROL_OK}<operation>{AUTH_OK}<result><status>{status}</status><function>{function}"
        f"</function><controlid>f1</controlid>{errors}</result></operation></response>"
    ).encode()


PROJECT_ERA = [
    pytest.param(
        200,
        _result("create", "failure", "BL34000061", "Another Project with the given value(s) J-1  already exists"),
        "ok: create:already_exists",
        id="duplicate PROJECTID",
    ),
    pytest.param(
        200,
        _result("update", "failure", "Cannot update non-existing PROJECT with PROJECTID=J-1."),
        "ok: update:not_existing",
        id="update of a missing project (wording from older clients)",
    ),
    pytest.param(
        200,
        _result("create", "failure", "DL02000001", "There was an error processing the request."),
        "ok: create:transient",
        id="DL02000001",
    ),
    pytest.param(
        200,
        _result("create", "failure", "BL01001973", "Invalid Project 'J-9' specified."),
        "ok: create:permanent",
        id="invalid project",
    ),
    pytest.param(
        200,
        _result("create", "failure", "", "There are too many operations running for this company."),
        "ok: create:transient",
        id="too many operations",
    ),
    pytest.param(
        429,
        b"<response><control><status>failure</status></control><errormessage><error><errorno>GW-0010</errorno>"
        b"</error></errormessage></response>",
        "transient",
        id="GW-0010 rate limit",
    ),
    pytest.param(200, b"<html><body>Scheduled maintenance</body></html>", "unknown_outcome", id="maintenance page"),
    pytest.param(524, b"<html>A timeout occurred</html>", "unknown_outcome", id="cloudflare 524"),
    pytest.param(200, _result("create", "success")[:-30], "unknown_outcome", id="cut off"),
]


@pytest.mark.parametrize(("status", "body", "label"), PROJECT_ERA)
def test_project_era_answers(status: int, body: bytes, label: str) -> None:
    assert observed(status, body, session_auth=True) == label
