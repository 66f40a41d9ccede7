"""One port for both Intacct APIs: both clients implement it, and the daemon uses nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from adapters.intacct import IntacctClient, IntacctCredentials
from adapters.intacct_rest import IntacctRestClient, RestCredentials
from adapters.port import IntacctPort
from daemon.sync import IntacctConnection
from tests.unit.test_config import config

DAEMON = Path(__file__).resolve().parents[2] / "daemon"
# The only modules that may name a concrete client: the connection that builds one, and the
# credentials the configuration reveals to each.
ALLOWED = {DAEMON / "sync" / "intacct.py", DAEMON / "config" / "credentials.py"}
CONCRETE = re.compile(r"\b(IntacctClient|IntacctRestClient|adapters\.intacct_rest|adapters\.intacct\.client)\b")


async def test_both_clients_and_the_connection_are_the_port() -> None:
    async with aiohttp.ClientSession() as http:
        xml = IntacctClient(http, IntacctCredentials("http://x", "s", "sp", "co", "u", "up"))
        rest = IntacctRestClient(http, RestCredentials("http://x", "c", "cs", "u@co"))
        connection = IntacctConnection(http, config())
        for client in (xml, rest, connection):
            assert isinstance(client, IntacctPort), type(client)


def test_nothing_above_the_adapters_names_a_client() -> None:
    offenders = [
        f"{path.relative_to(DAEMON.parent)}:{n}"
        for path in DAEMON.rglob("*.py") if path not in ALLOWED
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if CONCRETE.search(line)
    ]
    assert offenders == [], offenders
