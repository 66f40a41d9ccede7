"""The real thing in subprocesses: both simulators and the daemon, driven over HTTP as operators would.

Used by the acceptance and resilience tests and by the benchmarks. Nothing here reaches into a
process: data goes in through the simulators' `/_sim/` control APIs, and state is read from the
daemon's HTTP endpoints, the simulators and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TENANT = 1234567


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check()` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class Process:
    """A child process with its output in a file (read by tests on failure)."""

    def __init__(self, args: list[str], log_path: Path, env: Mapping[str, str] | None = None,
                 cwd: Path = REPO) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        self.signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; kill after `timeout` (a process already gone just reports its code)."""
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.args[:4]} did not stop within {timeout}s of SIGTERM") from None
        finally:
            self._log.close()

    def close_log(self) -> None:
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    async def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        code = self.proc.poll()
        if code is None:
            raise AssertionError(f"{self.args[:4]} still running after {timeout}s")
        return code


def _json_post(method: str, headers: Mapping[str, str] | None) -> dict[str, str]:
    """The daemon takes POST bodies as application/json only, an empty one included."""
    if method == "POST":
        return {"Content-Type": "application/json", **(headers or {})}
    return dict(headers or {})


class Client:
    """A small JSON client for one base URL."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201),
                   headers: Mapping[str, str] | None = None) -> Any:
        async with self.session.request(method, self.base + path, json=body, headers=_json_post(method, headers)
                                        ) as resp:
            text = await resp.text()
            if resp.status not in ok:
                raise AssertionError(f"{method} {path} → {resp.status}: {text[:500]}")
            return json.loads(text) if text else None

    async def status_and_json(self, method: str, path: str, body: Any = None,
                              headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body, headers=_json_post(method, headers)
                                        ) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


class ServiceTitanSim(Client):
    """The ServiceTitan simulator's control API for one tenant."""

    async def customer(self, name: str, **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("POST", f"/_sim/tenant/{TENANT}/customers", {"name": name, **extra})
        return result

    async def project(self, customer_id: int, name: str | None = "Project", **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "POST", f"/_sim/tenant/{TENANT}/projects", {"customerId": customer_id, "name": name, **extra})
        return result

    async def job(self, customer_id: int, project_id: int | None = None, **extra: Any) -> dict[str, Any]:
        body = {"customerId": customer_id, **extra}
        if project_id is not None:
            body["projectId"] = project_id
        result: dict[str, Any] = await self.call("POST", f"/_sim/tenant/{TENANT}/jobs", body)
        return result

    async def update(self, kind: str, st_id: int, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("PATCH", f"/_sim/tenant/{TENANT}/{kind}s/{st_id}", changes)
        return result

    async def bulk(self, doc: dict[str, Any]) -> Any:
        return await self.call("POST", f"/_sim/tenant/{TENANT}/bulk", doc)

    async def faults(self, **faults: Any) -> Any:
        return await self.call("PUT", "/_sim/faults", faults)


class IntacctSim(Client):
    """The Intacct simulator's control API."""

    async def projects(self) -> dict[str, dict[str, Any]]:
        doc = await self.call("GET", "/_sim/projects")
        return {p["PROJECTID"]: p for p in doc["projects"]}

    async def project_count(self) -> int:
        return int((await self.call("GET", "/_sim/projects"))["count"])

    async def faults(self, **faults: Any) -> Any:
        return await self.call("PUT", "/_sim/faults", faults)

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/_sim/stats")
        return result

    async def credentials(self, **creds: Any) -> Any:
        return await self.call("PUT", "/_sim/credentials", creds)


INTACCT_CREDS = {"sender_id": "sender", "sender_password": "sender-secret-1", "company_id": "ACME",
                 "user_id": "xml_gateway", "user_password": "user-secret-1"}
ST_CREDS = {"client_id": "cid.acme", "client_secret": "cs1.secret-st-1", "app_key": "ak1.appkey-1"}
# The REST API's OAuth2 client and Web Services user, for the same simulated company.
INTACCT_REST_CREDS = {"client_id": "acme-rest-client", "client_secret": "rest-secret-1",
                      "web_services_user": "ws_rest@ACME"}
# Runs a test once per Intacct API (the `intacct_api` fixture sets the stack's `intacct.api`).
BOTH_APIS = pytest.mark.parametrize("intacct_api", ["xml", "rest"], indirect=True)


@dataclass
class Stack:
    """Both simulators (subprocesses) and a way to start daemons against them."""

    tmp: Path
    dsn: str
    session: aiohttp.ClientSession
    st_port: int = field(default_factory=free_port)
    ia_port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)
    sim_args: dict[str, list[str]] = field(default_factory=dict)
    intacct_api: str = "xml"  # which API the daemons of `config()` speak

    def __post_init__(self) -> None:
        self.st = ServiceTitanSim(self.session, f"http://127.0.0.1:{self.st_port}")
        self.ia = IntacctSim(self.session, f"http://127.0.0.1:{self.ia_port}")

    async def start_simulators(self, *, enforce_credentials: bool = True, intacct_args: list[str] | None = None,
                               st_args: list[str] | None = None) -> None:
        ia = [sys.executable, "-m", "simulators.intacct", "--port", str(self.ia_port), *(intacct_args or [])]
        st = [sys.executable, "-m", "simulators.servicetitan", "--port", str(self.st_port), *(st_args or [])]
        if enforce_credentials:
            ia += [f"--{k.replace('_', '-')}={v}" for k, v in INTACCT_CREDS.items()]
            rest = INTACCT_REST_CREDS
            ia += [f"--client-id={rest['client_id']}", f"--client-secret={rest['client_secret']}",
                   f"--ws-user={rest['web_services_user']}"]
            st += [f"--{k.replace('_', '-')}={v}" for k, v in ST_CREDS.items()]
        self.processes.append(Process(ia, self.tmp / "intacct-sim.log"))
        self.processes.append(Process(st, self.tmp / "servicetitan-sim.log"))
        for client in (self.ia, self.st):
            await wait_until(lambda c=client: self._answers(c.base + "/_sim/faults"), 15, f"{client.base} up")

    async def _answers(self, url: str) -> bool:
        try:
            async with self.session.get(url) as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    def config(self, **overrides: Any) -> dict[str, Any]:
        """A daemon configuration against these simulators, with deep overrides."""
        config: dict[str, Any] = {
            "database": {"dsn": self.dsn},
            "state_dir": str(self.tmp / "state"),
            "http": {"listen": f"127.0.0.1:{free_port()}", "token": "http-token-secret-1"},
            "servicetitan": {
                "tenant_id": TENANT,
                "api_base_url": self.st.base,
                "auth_url": self.st.base + "/connect/token",
                **ST_CREDS,
                "poll_interval": "1s",
            },
            "intacct": {**self.intacct_credentials(), "request_timeout": "10s", "probe_interval": "1s"},
            "sync": {"backoff_initial": "0.2s", "backoff_max": "2s", "lease": "10s"},
            "logging": {"format": "json", "level": "info"},
        }
        for section, values in overrides.items():
            if isinstance(values, dict) and isinstance(config.get(section), dict):
                config[section] = {**config[section], **values}
            else:
                config[section] = values
        return config

    def intacct_credentials(self, api: str | None = None) -> dict[str, Any]:
        """The `intacct:` keys that select an API and authenticate with it (the stack's API by default)."""
        if (api or self.intacct_api) == "rest":
            return {"api": "rest", "rest_url": self.ia.base + "/ia/api/v1", **INTACCT_REST_CREDS}
        return {"endpoint_url": self.ia.base + "/ia/xml/xmlgw.phtml", **INTACCT_CREDS}

    def wrong_intacct_secret(self, value: str) -> dict[str, str]:
        """An `intacct:` override that makes the stack's API refuse the daemon's credentials."""
        return {"client_secret": value} if self.intacct_api == "rest" else {"user_password": value}

    def write_config(self, config: dict[str, Any], name: str = "config.yaml") -> Path:
        path = self.tmp / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    async def start_daemon(self, config: dict[str, Any], *, name: str = "daemon", wait: bool = True,
                           env: Mapping[str, str] | None = None, wrapper: Sequence[str] = ()) -> Daemon:
        """A daemon with `config`; `wrapper` runs it (e.g. `prlimit --nofile=512 --`)."""
        path = self.write_config(config, f"{name}.yaml")
        host, port = config["http"]["listen"].rsplit(":", 1)
        if host == "0.0.0.0":
            host = "127.0.0.1"
        proc = Process([*wrapper, sys.executable, "-m", "daemon.cli", "--config", str(path), "run"],
                       self.tmp / f"{name}.log", env=env)
        self.processes.append(proc)
        daemon = Daemon(proc, Client(self.session, f"http://{host}:{port}"), path,
                        str(config["http"].get("token") or ""))
        if wait:
            await daemon.wait_up()
        return daemon

    async def close(self) -> None:
        for proc in reversed(self.processes):
            if proc.proc.poll() is None:
                with contextlib.suppress(AssertionError):
                    proc.stop(30)
            proc.close_log()


@dataclass
class Daemon:
    proc: Process
    http: Client
    config_path: Path
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def wait_up(self, timeout: float = 30) -> None:
        async def up() -> bool:
            if self.proc.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.proc.returncode}:\n{self.proc.output()[-3000:]}")
            try:
                status, _ = await self.http.status_and_json("GET", "/livez")
            except aiohttp.ClientError:
                return False
            return status == 200

        await wait_until(up, timeout, "the daemon's /livez")

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.http.call("GET", "/status")
        return result

    async def record(self, kind: str, st_id: int) -> dict[str, Any] | None:
        status, body = await self.http.status_and_json("GET", f"/v1/records/{kind}/{st_id}")
        return body if status == 200 else None

    async def wait_state(self, kind: str, st_id: int, state: str, timeout: float = 30) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            record = await self.record(kind, st_id)
            return record if record and record["state"] == state else None

        result: dict[str, Any] = await wait_until(check, timeout, f"{kind} {st_id} {state}")
        return result

    async def wait_queue(self, predicate: Callable[[dict[str, int]], bool], timeout: float, what: str) -> dict:
        async def check() -> dict[str, Any] | None:
            queue = (await self.status())["queue"]
            return queue if predicate(queue) else None

        result: dict[str, Any] = await wait_until(check, timeout, what, interval=0.25)
        return result

    async def ensure(self, jobs: list[int] = (), projects: list[int] = (), timeout_s: float = 20,  # type: ignore[assignment]
                     ) -> tuple[int, Any]:
        return await self.http.status_and_json(
            "POST", "/v1/ensure", {"jobs": list(jobs), "projects": list(projects), "timeout_s": timeout_s},
            headers=self.auth)

    def hup(self) -> None:
        self.proc.signal(signal.SIGHUP)
