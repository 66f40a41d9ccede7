"""Finding 5 (the objects): the Intacct session and the ServiceTitan token never show in a `repr`, so no
traceback renderer, debugger or log line that prints an object prints the secret it holds."""

from __future__ import annotations

import aiohttp

from adapters.intacct.client import _Session
from adapters.intacct.xml import ParsedResponse
from adapters.intacct_rest.auth import Token
from adapters.servicetitan.auth import TokenManager
from adapters.servicetitan.models import ServiceTitanCredentials

SESSION_ID = "SESSION-s3cr3t-4c0ffee"
TOKEN = "ACCESSTOKEN-s3cr3t-beef"


def test_intacct_session_repr_masks_the_session_id() -> None:
    session = _Session(SESSION_ID, "https://api.intacct.com/ia/xml/xmlgw.phtml", 123.0)
    for text in (repr(session), str(session), f"{session}", f"{session!r}"):
        assert SESSION_ID not in text
        assert "xmlgw.phtml" in text  # still useful: where the session lives


def test_parsed_response_repr_masks_the_session_id() -> None:
    parsed = ParsedResponse(control_status="success", session_id=SESSION_ID, session_endpoint="https://x/ia")
    assert SESSION_ID not in repr(parsed)
    assert "control_status='success'" in repr(parsed)


async def test_token_manager_repr_masks_the_token() -> None:
    credentials = ServiceTitanCredentials("https://api.example", "https://auth.example/connect/token", 1,
                                          "app-key-1234", "client", "client-secret-1234")
    async with aiohttp.ClientSession() as session:
        manager = TokenManager(session, credentials, request_timeout=5)
        manager._token = TOKEN  # as a fetch leaves it
        for text in (repr(manager), str(manager)):
            assert TOKEN not in text
            assert "client-secret-1234" not in text and "app-key-1234" not in text
            assert "auth.example" in text


def test_intacct_rest_token_repr_masks_the_token() -> None:
    token = Token(TOKEN, 42.0)
    for text in (repr(token), str(token), f"{token}"):
        assert TOKEN not in text and "42.0" in text
