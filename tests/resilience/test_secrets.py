"""Secrets never leak, and POST endpoints refuse a missing or wrong token.

A daemon runs with a distinctive value for every secret (and a password in its DSN), is exercised
(a connection error with a wrong password, then syncs, export gating, the status and record
endpoints, metrics, a ServiceTitan credential error, a reconciliation with its emailed report,
check-config, status and sync commands), and then every log line, HTTP body, email and command
output is searched for each secret value: none may appear.
"""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from email import policy
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.acceptance.harness import REPO, Daemon, Stack, free_port, wait_until
from tests.resilience.support import Figures, daemon_alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SECRETS = {
    "http.token": "HTTPTOKEN-s3cr3t-7f1a9c",
    "servicetitan.app_key": "APPKEY-s3cr3t-2b8e4d",
    "servicetitan.client_secret": "CLIENTSECRET-s3cr3t-91ac",
    "intacct.sender_password": "SENDERPW-s3cr3t-c0ffee",
    "intacct.user_password": "USERPW-s3cr3t-d00d",
    "intacct.user_password (wrong)": "WRONGUSERPW-s3cr3t-bad1",
    "report.email.password": "MAILPW-s3cr3t-55aa",
    "database.dsn password": "DSNPW-s3cr3t-77bb",
}
ST_ID, IA_SENDER, IA_COMPANY, IA_USER = "cid.secrets", "sender.secrets", "ACME", "xml_gateway"
MAIL_USER = "reports"


class Inbox:
    """An SMTP server's handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
        MAIL_USER, SECRETS["report.email.password"])
    return AuthResult(success=ok, handled=False)


def _message_text(message: email.message.EmailMessage) -> str:
    parts = [f"{k}: {v}" for k, v in message.items()]
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            parts.append(payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload))
    return "\n".join(parts)


def _config(stack: Stack, smtp_port: int, *, user_password: str) -> dict[str, Any]:
    return stack.config(
        http={"listen": f"127.0.0.1:{stack.http_port}", "token": SECRETS["http.token"]},  # type: ignore[attr-defined]
        servicetitan={"client_id": ST_ID, "client_secret": SECRETS["servicetitan.client_secret"],
                      "app_key": SECRETS["servicetitan.app_key"]},
        intacct={"sender_id": IA_SENDER, "sender_password": SECRETS["intacct.sender_password"],
                 "company_id": IA_COMPANY, "user_id": IA_USER, "user_password": user_password,
                 "probe_interval": "1s"},
        report={"send": "always", "email": {
            "to": ["accounting@example.com"], "from": "sync@example.com", "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port, "tls": "none", "username": MAIL_USER,
            "password": SECRETS["report.email.password"]}},
        logging={"format": "json", "level": "debug"},
    )


def _cli(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ST_INTACCT_SYNC_CONFIG"}
    return subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config_path), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


async def _get(daemon: Daemon, path: str, seen: list[str], headers: dict[str, str] | None = None) -> Any:
    async with daemon.http.session.get(daemon.http.base + path, headers=headers) as resp:
        text = await resp.text()
        seen.append(f"GET {path} {resp.status} {dict(resp.headers)} {text}")
        return json.loads(text) if resp.content_type == "application/json" else text


async def _post(daemon: Daemon, path: str, body: Any, seen: list[str], token: str | None) -> tuple[int, Any]:
    # Every POST declares JSON, an empty body included (the daemon answers 415 otherwise).
    headers = {"Content-Type": "application/json", **({} if token is None else {"Authorization": token})}
    async with daemon.http.session.post(daemon.http.base + path, json=body, headers=headers) as resp:
        text = await resp.text()
        seen.append(f"POST {path} {resp.status} {dict(resp.headers)} {text}")
        return resp.status, (json.loads(text) if text and resp.content_type == "application/json" else text)


async def test_no_secret_leaks_anywhere(tmp_path: Path, database_dsn: str, session: aiohttp.ClientSession) -> None:
    figures = Figures("secrets")
    dsn = database_dsn.replace("postgresql://postgres@", f"postgresql://postgres:{SECRETS['database.dsn password']}@")
    assert dsn != database_dsn
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=_authenticator,
                      auth_require_tls=False)
    smtp.start()
    stack = Stack(tmp_path, dsn, session)
    stack.http_port = free_port()  # type: ignore[attr-defined]  # one address for every version of the file
    seen: list[str] = []  # every HTTP answer and command output, searched at the end
    try:
        await stack.start_simulators(enforce_credentials=False, intacct_args=[
            f"--sender-id={IA_SENDER}", f"--sender-password={SECRETS['intacct.sender_password']}",
            f"--company-id={IA_COMPANY}", f"--user-id={IA_USER}",
            f"--user-password={SECRETS['intacct.user_password']}"], st_args=[
            f"--client-id={ST_ID}", f"--client-secret={SECRETS['servicetitan.client_secret']}",
            f"--app-key={SECRETS['servicetitan.app_key']}"])

        # 1. A wrong Intacct password: connection error, records blocked, errors shown everywhere.
        daemon = await stack.start_daemon(_config(stack, smtp.port,
                                                  user_password=SECRETS["intacct.user_password (wrong)"]))
        customer = await stack.st.customer("Secretive & Sons")
        jobs = [await stack.st.job(customer["id"]) for _ in range(3)]
        await daemon.wait_queue(lambda q: q["blocked-by-connection"] == 3, 30, "3 blocked records")
        for path in ("/status", "/readyz", "/metrics", "/v1/records?state=blocked-by-connection",
                     f"/v1/records/job/{jobs[0]['id']}", "/livez"):
            await _get(daemon, path, seen)
        status, _ = await _post(daemon, "/v1/ensure", {"jobs": [jobs[0]["id"]], "timeout_s": 2}, seen,
                                f"Bearer {SECRETS['http.token']}")
        assert status == 503

        # 2. The right password (reload): everything syncs; one record is refused by Intacct.
        stack.write_config(_config(stack, smtp.port, user_password=SECRETS["intacct.user_password"]), "daemon.yaml")
        daemon.hup()
        refused = await stack.st.project(customer["id"], "Refused", number="N" * 25)
        project = await stack.st.project(customer["id"], "Visible project")
        jobs.append(await stack.st.job(customer["id"], project["id"]))
        await daemon.wait_queue(lambda q: q["synced"] == 5 and q["failed"] == 1, 60, "5 synced, 1 failed")
        status, body = await _post(daemon, "/v1/ensure", {"jobs": [j["id"] for j in jobs]}, seen,
                                   f"Bearer {SECRETS['http.token']}")
        assert status == 200, body
        status, _ = await _post(daemon, f"/v1/records/project/{refused['id']}/retry", None, seen,
                                f"Bearer {SECRETS['http.token']}")
        assert status == 200
        await daemon.wait_state("project", refused["id"], "failed")

        # 3. ServiceTitan refuses our client secret for a while (tokens expire, the renewal is refused).
        await stack.st.call("PUT", "/_sim/credentials", {"client_secret": "rotated-st-secret-x"})
        await stack.st.call("POST", "/_sim/expire-tokens")
        await wait_until(lambda: _st_state(daemon, "error"), 30, "the ServiceTitan connection in error")
        status, _ = await _post(daemon, "/v1/ensure", {"jobs": [987654]}, seen, f"Bearer {SECRETS['http.token']}")
        assert status == 503
        await _get(daemon, "/status", seen)
        await stack.st.call("PUT", "/_sim/credentials", {"client_secret": SECRETS["servicetitan.client_secret"]})
        await wait_until(lambda: _st_state(daemon, "ok"), 30, "the ServiceTitan connection ok")

        # 4. A reconciliation, its stored summary and its emailed report.
        status, run = await _post(daemon, "/v1/reconcile", None, seen, f"Bearer {SECRETS['http.token']}")
        assert status == 202, run
        latest = await wait_until(lambda: _latest(daemon, run["id"], seen), 60, "the reconciliation finished")
        await wait_until(lambda: _has_mail(inbox), 60, "the reconciliation report email")
        mails = [_message_text(m) for m in inbox.messages]
        seen.extend(mails)

        # 5. Everything an operator may look at.
        page = await _get(daemon, "/v1/records?limit=2", seen)
        while page["next"]:
            page = await _get(daemon, f"/v1/records?limit=2&after={page['next']}", seen)
        for j in jobs:
            await _get(daemon, f"/v1/records/job/{j['id']}", seen)
        for path in ("/status", "/readyz", "/metrics", "/v1/reconcile/latest"):
            await _get(daemon, path, seen)
        outputs = {}
        for args in (("check-config",), ("status",), ("sync", "--job", str(jobs[0]["id"])),
                     ("retry", "--project", str(refused["id"]))):
            result = _cli(daemon.config_path, *args)
            outputs[" ".join(args)] = result.returncode
            seen.append(f"$ {' '.join(args)} → {result.returncode}\n{result.stdout}\n{result.stderr}")
        assert set(outputs.values()) == {0}, (outputs, seen[-4:])
        # A broken file that holds every secret: the one error line names the key, never a value.
        broken = _config(stack, smtp.port, user_password=SECRETS["intacct.user_password"])
        broken["intacct"]["user_pasword"] = SECRETS["intacct.user_password (wrong)"]
        bad_path = stack.write_config(broken, "broken.yaml")
        for command in ("check-config", "run"):
            result = _cli(bad_path, command)
            assert result.returncode == 2 and "user_pasword" in result.stderr, result.stderr
            seen.append(f"$ {command} (broken) → {result.returncode}\n{result.stdout}\n{result.stderr}")
        assert await daemon_alive(daemon)
        assert daemon.proc.stop(60) == 0
        log = daemon.proc.output()
    finally:
        await stack.close()
        smtp.stop()

    # The search. A secret may also hide URL-encoded.
    haystacks = {"daemon log": log, **{f"http/cli #{i}": text for i, text in enumerate(seen)}}
    leaks = [(name, where) for name, secret in SECRETS.items() for where, text in haystacks.items()
             if secret in text or quote(secret) in text]
    figures.update(secrets=len(SECRETS), log_lines=len(log.splitlines()), http_bodies_and_outputs=len(seen),
                   emails=len(mails), reconcile_run=latest.get("id"), commands=outputs, leaks=len(leaks))
    figures.done()
    assert not leaks, leaks
    # Sanity: the search looked at real content (the secrets were in use, the errors were shown).
    assert "Sign-in information is incorrect" in "\n".join(seen) and '"record_transition"' in log
    assert any("Reconciliation" in m for m in mails)


async def _st_state(daemon: Daemon, state: str) -> bool:
    return bool((await daemon.status())["connections"]["servicetitan"]["state"] == state)


async def _latest(daemon: Daemon, run_id: int, seen: list[str]) -> dict[str, Any] | None:
    status, body = await daemon.http.status_and_json("GET", "/v1/reconcile/latest")
    if status == 200 and body.get("id") == run_id:
        seen.append(json.dumps(body))
        result: dict[str, Any] = body
        return result
    return None


async def _has_mail(inbox: Inbox) -> bool:
    return bool(inbox.messages)


async def test_post_endpoints_refuse_missing_or_wrong_tokens(stack: Stack) -> None:
    figures = Figures("bearer_token")
    token = "tok-" + "7" * 40
    daemon = await stack.start_daemon(stack.config(http={"listen": f"127.0.0.1:{free_port()}", "token": token}))
    customer = await stack.st.customer("Token Test")
    job = await stack.st.job(customer["id"])
    body = {"jobs": [job["id"]], "timeout_s": 20}
    wrong = {
        "missing": None,
        "empty": "",
        "no scheme": token,
        "basic": f"Basic {token}",
        "wrong": "Bearer wrong",
        "all but the last character": f"Bearer {token[:-1]}",
        "last character changed": f"Bearer {token[:-1]}8",
        "one character more": f"Bearer {token}7",
        "prefix only": f"Bearer {token[:4]}",
        "double space": f"Bearer  {token}",
        "another daemon's token": "Bearer http-token-secret-1",
    }
    refused: dict[str, int] = {}
    seen: list[str] = []
    for name, header in wrong.items():
        for path, payload in (("/v1/ensure", body), ("/v1/reconcile", None), (f"/v1/records/job/{job['id']}/retry",
                                                                             None)):
            status, answer = await _post(daemon, path, payload, seen, header)
            refused[f"{name} {path}"] = status
            assert status == 401, (name, path, status, answer)
            assert answer == {"error": "missing or wrong bearer token"}
    status, answer = await _post(daemon, "/v1/ensure", body, seen, f"Bearer {token}")
    assert status == 200 and answer["ok"], answer
    # GET endpoints stay open on loopback; nothing was synced by the refused calls' bodies twice.
    assert (await daemon.http.status_and_json("GET", "/status"))[0] == 200
    assert await stack.ia.project_count() == 1
    figures.update(refused=len(refused), accepted=1, cases=sorted(wrong))
    figures.done()
    assert all(token not in text for text in seen)
    assert daemon.proc.stop(60) == 0
