"""The gateway error table, row by row, for the rows the simulator does not produce itself.

A tiny aiohttp gateway answers getAPISession normally and every other request with the exact XML
(or HTTP status) of the row under test. Rows the simulator produces are covered in
test_intacct_client.py; each row here names the error it stands for.
"""

from __future__ import annotations

import asyncio
import socket
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from adapters.errors import ConnectionFailure, PermanentError, TransientError
from adapters.intacct import CreateProject, IntacctClient, IntacctCredentials, Outcome, UpdateProject

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "intacct"
Responder = Callable[[ET.Element, web.Request], Awaitable[web.StreamResponse]]

CONTROL_OK = (
    "<control><status>success</status><senderid>s</senderid><controlid>c</controlid>"
    "<uniqueid>false</uniqueid><dtdversion>3.0</dtdversion></control>"
)
AUTH_OK = (
    "<authentication><status>success</status><userid>u</userid><companyid>co</companyid>"
    "<locationid></locationid><sessiontimestamp>2030-01-01T00:00:00+00:00</sessiontimestamp></authentication>"
)


def xml_response(body: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, status=status, headers=headers, content_type="text/xml")


def error(errorno: str, description: str = "", description2: str = "", correction: str = "") -> str:
    return (
        f"<error><errorno>{errorno}</errorno><description>{description}</description>"
        f"<description2>{description2}</description2><correction>{correction}</correction></error>"
    )


def control_failure(*errors: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><response><control><status>failure</status><senderid>s</senderid>'
        "<controlid>c</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion></control>"
        f"<errormessage>{''.join(errors)}</errormessage></response>"
    )


def auth_failure(*errors: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><response>{CONTROL_OK}<operation><authentication>'
        "<status>failure</status><userid>u</userid><companyid>co</companyid></authentication>"
        f"<errormessage>{''.join(errors)}</errormessage></operation></response>"
    )


def results(*items: str) -> str:
    operation = f"<operation>{AUTH_OK}{''.join(items)}</operation>"
    return f'<?xml version="1.0" encoding="UTF-8"?><response>{CONTROL_OK}{operation}</response>'


def result(function: ET.Element, status: str, *errors: str) -> str:
    name = function[0].tag
    message = f"<errormessage>{''.join(errors)}</errormessage>" if errors else ""
    return (
        f"<result><status>{status}</status><function>{name}</function>"
        f"<controlid>{function.get('controlid')}</controlid>{message}</result>"
    )


class Scripted:
    """A gateway that opens sessions and answers everything else with ``responder``."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        root = ET.fromstring(await request.read())
        if root.find("operation/content/function/getAPISession") is not None:
            endpoint = str(request.url)
            return xml_response(
                results(
                    "<result><status>success</status><function>getAPISession</function><controlid>s</controlid>"
                    f"<data><api><sessionid>S1</sessionid><endpoint>{endpoint}</endpoint></api></data></result>"
                )
            )
        self.requests += 1
        return await self.responder(root, request)


@pytest.fixture
def scripted(
    aiohttp_server: AiohttpServer, intacct_http: aiohttp.ClientSession
) -> Callable[[Responder], Awaitable[IntacctClient]]:
    async def start(responder: Responder) -> IntacctClient:
        gateway = Scripted(responder)
        app = web.Application()
        app.router.add_post("/ia/xml/xmlgw.phtml", gateway.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        credentials = IntacctCredentials(str(server.make_url("/ia/xml/xmlgw.phtml")), "s", "sp", "co", "u", "up")
        return IntacctClient(intacct_http, credentials, request_timeout=0.5)

    return start


def answer(body: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Responder:
    async def respond(root: ET.Element, request: web.Request) -> web.StreamResponse:
        return xml_response(body, status, headers)

    return respond


def per_function(status: str, *errors: str) -> Responder:
    async def respond(root: ET.Element, request: web.Request) -> web.StreamResponse:
        return xml_response(results(*(result(f, status, *errors) for f in root.iterfind("operation/content/function"))))

    return respond


CREATE = CreateProject("job-1-v1", {"PROJECTID": "J-1", "NAME": "n", "PROJECTCATEGORY": "Contract"})


# -- control failure: connection -------------------------------------------------------------------


@pytest.mark.parametrize(
    "errors",
    [
        [error("XL03000006", "", "Incorrect Intacct XML Partner ID or password.")],
        [error("PL04000055", "", "This company is a demo company and has expired.")],
        [error("XL03000006", "", "test is not a valid transport policy.")],
    ],
)
async def test_control_failure_is_connection(
    scripted: Callable[[Responder], Awaitable[IntacctClient]], errors: list[str]
) -> None:
    client = await scripted(answer(control_failure(*errors)))
    with pytest.raises(ConnectionFailure) as info:
        await client.execute([CREATE])
    assert info.value.errorno in ("XL03000006", "PL04000055")


JPP0002 = (
    '<?xml version="1.0" encoding="UTF-8"?><response><control><status>failure</status></control><errormessage>'
    "<error><errorno>XMLGW_JPP0002</errorno><description>Sign-in information is incorrect. Please check your "
    "request.</description></error></errormessage></response>"
)


async def test_http_401_xmlgw_jpp0002_at_login_is_connection(
    aiohttp_server: AiohttpServer, intacct_http: aiohttp.ClientSession
) -> None:
    async def handle(request: web.Request) -> web.Response:
        return xml_response(JPP0002, status=401)

    app = web.Application()
    app.router.add_post("/gw", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = IntacctClient(intacct_http, IntacctCredentials(str(server.make_url("/gw")), "s", "sp", "c", "u", "p"))
    with pytest.raises(ConnectionFailure, match="HTTP 401") as info:
        await client.execute([CREATE])
    assert info.value.errorno == "XMLGW_JPP0002"


async def test_http_401_xmlgw_jpp0002_on_a_session_logs_in_again_and_resends(
    scripted: Callable[[Responder], Awaitable[IntacctClient]],
) -> None:
    # The fresh login succeeds, so the connection is not in error; its session refused at once is transient.
    client = await scripted(answer(JPP0002, status=401))
    with pytest.raises(TransientError, match="freshly opened session") as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is False


@pytest.mark.parametrize(
    "errors",
    [
        [error("XL03000006", "", "Sign-in information is incorrect")],
        [
            error(
                "XL03000006",
                "Invalid Web Services Authorization",
                "The sender ID 'x' is not authorized to make Web Services requests to company ID 'y'.",
                "Contact the company administrator to grant Web Services authorization to this sender ID.",
            )
        ],
    ],
)
async def test_login_authentication_failure_is_connection(
    aiohttp_server: AiohttpServer, intacct_http: aiohttp.ClientSession, errors: list[str]
) -> None:
    async def handle(request: web.Request) -> web.Response:
        return xml_response(auth_failure(*errors))

    app = web.Application()
    app.router.add_post("/gw", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = IntacctClient(intacct_http, IntacctCredentials(str(server.make_url("/gw")), "s", "sp", "c", "u", "p"))
    with pytest.raises(ConnectionFailure, match="authentication failed"):
        await client.probe()


async def test_real_login_invalid_sample_is_connection(
    aiohttp_server: AiohttpServer, intacct_http: aiohttp.ClientSession
) -> None:
    async def handle(request: web.Request) -> web.Response:
        return xml_response((FIXTURES / "execLoginInvalid.xml").read_bytes())

    app = web.Application()
    app.router.add_post("/gw", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = IntacctClient(intacct_http, IntacctCredentials(str(server.make_url("/gw")), "s", "sp", "c", "u", "p"))
    with pytest.raises(ConnectionFailure, match="Sign-in information is incorrect"):
        await client.execute([CREATE])


async def test_real_invalid_session_sample_renews_once_then_is_transient(
    scripted: Callable[[Responder], Awaitable[IntacctClient]],
) -> None:
    client = await scripted(answer((FIXTURES / "sessionInvalid.xml").read_bytes()))
    with pytest.raises(TransientError, match="freshly opened session"):
        await client.execute([CREATE])


# -- transient ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "retry_after"),
    [
        (control_failure(error("GW-0010", "Rate limit exceeded")), 429, 3.0),
        (control_failure(error("GW-0010", "Rate limit exceeded")), 200, None),
        (
            control_failure(error("200024", "", "There are too many operations running for this company (200024).")),
            200,
            None,
        ),
        (control_failure(error("XL03000000", "The Service is Temporarily Off-line")), 200, None),
        (control_failure(error("XL03000000", "", "", "Please Try Again Later")), 200, None),
        (b"<html>Too Many Requests</html>", 429, None),
    ],
)
async def test_rate_and_concurrency_limits_are_transient_not_applied(
    scripted: Callable[[Responder], Awaitable[IntacctClient]],
    body: str | bytes,
    status: int,
    retry_after: float | None,
) -> None:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    client = await scripted(answer(body, status, headers))
    with pytest.raises(TransientError) as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is False
    assert info.value.retry_after == retry_after


async def test_retry_after_as_http_date(scripted: Callable[[Responder], Awaitable[IntacctClient]]) -> None:
    client = await scripted(answer(b"", 429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    with pytest.raises(TransientError) as info:
        await client.execute([CREATE])
    assert info.value.retry_after == 0.0  # a date in the past: retry now


@pytest.mark.parametrize(
    "errors",
    [
        [error("200024", "", "There are too many operations running for this company (200024).")],
        [error("BL01001973", "The Service is Temporarily Off-line")],
        [error("XYZ", "", "", "Please Try Again Later")],
        [error("API rate limit exceeded")],
    ],
)
async def test_function_level_transient_text(
    scripted: Callable[[Responder], Awaitable[IntacctClient]], errors: list[str]
) -> None:
    client = await scripted(per_function("failure", *errors))
    [res] = await client.execute([CREATE])
    assert res.outcome is Outcome.TRANSIENT
    assert res.error_fields["class"] == "transient"


async def test_aborted_function_is_transient(scripted: Callable[[Responder], Awaitable[IntacctClient]]) -> None:
    rollback = error("XL03000009", "", "The entire transaction in this operation has been rolled back due to an error.")
    client = await scripted(per_function("aborted", rollback))
    results_ = await client.execute([CREATE, UpdateProject("u", "J-2", {"NAME": "x"})])
    assert [r.outcome for r in results_] == [Outcome.TRANSIENT, Outcome.TRANSIENT]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 524])
async def test_http_5xx_outcome_unknown(scripted: Callable[[Responder], Awaitable[IntacctClient]], status: int) -> None:
    client = await scripted(answer(b"<html>cf-error-details</html>", status))
    with pytest.raises(TransientError) as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is True and info.value.status == status


async def test_timeout_outcome_unknown(scripted: Callable[[Responder], Awaitable[IntacctClient]]) -> None:
    async def slow(root: ET.Element, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.0)
        return xml_response(results())

    client = await scripted(slow)
    with pytest.raises(TransientError, match="timed out") as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is True


async def test_connection_reset_outcome_unknown(scripted: Callable[[Responder], Awaitable[IntacctClient]]) -> None:
    async def reset(root: ET.Element, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return xml_response(results())

    client = await scripted(reset)
    with pytest.raises(TransientError) as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is True


async def test_connection_refused_outcome_unknown(intacct_http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    credentials = IntacctCredentials(f"http://127.0.0.1:{port}/ia/xml/xmlgw.phtml", "s", "sp", "c", "u", "p")
    client = IntacctClient(intacct_http, credentials, request_timeout=2)
    with pytest.raises(TransientError, match="ClientConnectorError") as info:
        await client.probe()
    assert info.value.outcome_unknown is True


# -- permanent --------------------------------------------------------------------------------------


async def test_xml_parse_error_is_permanent(scripted: Callable[[Responder], Awaitable[IntacctClient]]) -> None:
    client = await scripted(answer((FIXTURES / "execXMLError.xml").read_bytes()))
    with pytest.raises(PermanentError) as info:
        await client.execute([CREATE])
    assert info.value.errorno == "XL03000003"


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE r [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;'>]><response>&b;</response>",
        b"<html><body>Maintenance</body></html>",
        b"",
    ],
)
async def test_unparseable_200_is_transient_with_unknown_outcome(
    scripted: Callable[[Responder], Awaitable[IntacctClient]], body: bytes
) -> None:
    client = await scripted(answer(body))
    with pytest.raises(TransientError, match="incomplete response") as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is True


async def test_missing_result_is_transient(scripted: Callable[[Responder], Awaitable[IntacctClient]]) -> None:
    async def only_first(root: ET.Element, request: web.Request) -> web.StreamResponse:
        first = root.find("operation/content/function")
        assert first is not None
        return xml_response(results(result(first, "success")))

    client = await scripted(only_first)
    got = await client.execute([CREATE, UpdateProject("u-2", "J-2", {"NAME": "x"})])
    assert [r.outcome for r in got] == [Outcome.SUCCESS, Outcome.TRANSIENT]
    assert got[1].errors[0].description == "no result returned"
    assert got[1].function == "update"


async def test_real_func_error_sample_is_already_exists(
    scripted: Callable[[Responder], Awaitable[IntacctClient]],
) -> None:
    client = await scripted(answer((FIXTURES / "execFuncError.xml").read_bytes()))
    [res] = await client.execute([CreateProject("testFunctionId", {"PROJECTID": "Fellow PD1"})])
    assert res.outcome is Outcome.ALREADY_EXISTS
    assert res.projects[0].record_no == 1424
