"""`st-intacct-sync check --intacct` with `intacct.api: rest`: a real token and query, one line of facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.harness import INTACCT_REST_CREDS, Stack
from tests.operations.test_check_command import cli

pytestmark = pytest.mark.timeout(120)


async def test_check_intacct_over_rest(stack: Stack, tmp_path: Path) -> None:
    stack.intacct_api = "rest"
    config = stack.config()
    passed = cli(config, tmp_path, "--intacct")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    line = passed.stdout.strip()
    assert line.startswith("intacct (rest API): signed in and read projects: "), line
    assert f"user {INTACCT_REST_CREDS['web_services_user']}" in line and "token expires in s 21600" in line
    assert f"base url {stack.ia.base}/ia/api/v1" in line and "projects 0" in line
    assert INTACCT_REST_CREDS["client_secret"] not in passed.stdout + passed.stderr

    wrong = {**config, "intacct": {**config["intacct"], "client_secret": "wrong-rest-secret-2"}}
    failed = cli(wrong, tmp_path, "--intacct")
    assert failed.returncode == 1
    assert failed.stdout.startswith("intacct: FAILED (connection): ") and "REST-1216" in failed.stdout
    assert "wrong-rest-secret-2" not in failed.stdout + failed.stderr
