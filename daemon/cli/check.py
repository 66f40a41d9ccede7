"""`st-intacct-sync check --mail --intacct --servicetitan`: does each external service work with this
configuration? Each check logs in (or sends) for real and prints what it found in one line.

Exit 0 when every check asked for passed, 1 when one failed (its line says why), 2 when the
configuration is invalid or lacks what a check needs (`--mail` without `report.email`). Nothing
here touches the database, so the checks run before the first start, as an admin, from a shell.

The Intacct check goes through whichever API `intacct.api` names: it probes the port the daemon
uses, then prints what the client can tell about its connection (`describe()`, when it has one).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import aiohttp

from adapters.errors import AdapterError
from adapters.mail import MailClient, MailMessage
from adapters.servicetitan import ServiceTitanClient
from daemon.config import Config, servicetitan_credentials
from daemon.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from daemon.reconcile.mail import mail_config
from daemon.sync import IntacctConnection
from daemon.version import VERSION

CHECK_TIMEOUT_S = 60.0


@runtime_checkable
class Describes(Protocol):
    """A client that can say what it is connected to (after a successful probe)."""

    async def describe(self) -> dict[str, object]: ...


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mail", action="store_true", help="send a test message to report.email.to")
    parser.add_argument("--intacct", action="store_true", help="log in to Intacct and read one project")
    parser.add_argument("--servicetitan", action="store_true", help="get a token and list one job")


def _words(facts: dict[str, Any]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in facts.items() if v is not None and k != "api")


async def check_mail(config: Config) -> str:
    settings = mail_config(config)
    if settings is None:
        raise ValueError("--mail: report.email is not configured")
    host = socket.gethostname()
    message = MailMessage(
        subject=f"[st-intacct-sync] Test message from {host}",
        text=(f"This is a test message from st-intacct-sync {VERSION} on {host}, sent by `st-intacct-sync "
              f"check --mail` at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.\nReconciliation reports for "
              f"ServiceTitan tenant {config.servicetitan.tenant_id} will come from this address.\n"),
        html=(f"<p>This is a test message from st-intacct-sync {VERSION} on {host}.</p><p>Reconciliation "
              f"reports for ServiceTitan tenant {config.servicetitan.tenant_id} will come from this address.</p>"),
    )
    result = await MailClient(settings).send(message)
    refused = f"; refused: {', '.join(result.refused)}" if result.refused else ""
    return (f"mail: sent a test message to {', '.join(settings.to)} through {settings.host}:{settings.port} "
            f"(tls {settings.tls_mode}){refused}")


async def check_intacct(config: Config) -> str:
    async with aiohttp.ClientSession() as http:
        connection = IntacctConnection(http, config)
        await connection.probe()
        facts: dict[str, Any] = {"api": connection.api}
        if isinstance(connection.client, Describes):
            facts.update(await connection.client.describe())
    return f"intacct ({facts['api']} API): signed in and read projects: {_words(facts)}"


async def check_servicetitan(config: Config) -> str:
    async with aiohttp.ClientSession() as http:
        client = ServiceTitanClient(http, servicetitan_credentials(config))
        await client.probe()
        facts: dict[str, Any] = await client.describe() if isinstance(client, Describes) else {}
    return f"servicetitan: got a token and listed jobs: {_words(facts)}"


CHECKS: dict[str, Callable[[Config], Awaitable[str]]] = {
    "mail": check_mail, "intacct": check_intacct, "servicetitan": check_servicetitan,
}


def run_checks(config: Config, names: list[str], out: Callable[[str], None]) -> int:
    """Run each named check in turn; print one line each; the exit code."""
    failed = False
    for name in names:
        try:
            line = asyncio.run(asyncio.wait_for(CHECKS[name](config), CHECK_TIMEOUT_S))
        except ValueError as exc:
            out(f"{name}: cannot check: {exc}")
            return EXIT_BAD_INPUT
        except AdapterError as exc:
            out(f"{name}: FAILED ({exc.error_class}): {exc.message}")
            failed = True
        except TimeoutError:
            out(f"{name}: FAILED: no answer within {CHECK_TIMEOUT_S:g} s")
            failed = True
        else:
            out(line)
    return EXIT_FAILED if failed else EXIT_OK
