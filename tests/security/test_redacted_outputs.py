"""Finding 8 (outputs): `/status`, `/v1/records` and the errors the store keeps pass the redactor, like
logs and reports.

A configured secret can come back from outside: here a ServiceTitan customer whose name is the
ServiceTitan client secret (someone pasted it into the wrong field) becomes the CUSTOMERID Intacct
refuses, and Intacct's error quotes it. Before, that text was stored as is and served by `/status`
and the record endpoints. The name still goes to Intacct exactly as ServiceTitan has it.
"""

from __future__ import annotations

import json

import asyncpg
import pytest

from tests.acceptance.harness import ST_CREDS, Stack, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SECRET = ST_CREDS["client_secret"]


async def test_status_records_and_stored_errors_are_redacted(stack: Stack) -> None:
    port = free_port()
    daemon = await stack.start_daemon(stack.config(
        http={"listen": f"127.0.0.1:{port}"},
        settings={"enable_customer_project_linkage": True},
        mapping={"customer_id": "{customer_name}"},
    ))
    customer = await stack.st.customer(SECRET)
    job = await stack.st.job(customer["id"])
    failed = await daemon.wait_state("job", job["id"], "failed", timeout=60)

    served = {
        "/status": await daemon.http.call("GET", "/status"),
        "/v1/records": await daemon.http.call("GET", "/v1/records?state=failed"),
        "/v1/records/job": failed,
    }
    for path, body in served.items():
        text = json.dumps(body, ensure_ascii=False)
        assert SECRET not in text, (path, text)
    assert "***" in served["/status"]["recent_failures"][0]["error"], served["/status"]
    record = served["/v1/records"]["records"][0]
    assert record["desired"]["CUSTOMERID"] == "***" and "***" in record["last_error"]["description2"], record
    assert any(h["error"] and "***" in json.dumps(h["error"]) for h in failed["history"]), failed["history"]

    conn = await asyncpg.connect(stack.dsn)
    try:
        stored = await conn.fetch("SELECT last_error::text AS e FROM records WHERE last_error IS NOT NULL "
                                  "UNION ALL SELECT error::text FROM record_history WHERE error IS NOT NULL")
    finally:
        await conn.close()
    assert stored and all(SECRET not in row["e"] for row in stored), [row["e"] for row in stored]
    assert any("***" in row["e"] for row in stored)
    assert SECRET not in daemon.proc.output()
