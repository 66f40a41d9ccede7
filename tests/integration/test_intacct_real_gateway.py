"""What the real gateway (and what stands in front of it) does that the simulator did not: issue 10.

A small scripted gateway on loopback opens sessions and answers each request as the test says:
cut-off and foreign 200 bodies, every wording of a dead session, sessions without a timeout,
DL02000001, session endpoints elsewhere, redirects, oversized bodies, endless query paging and
unusable Retry-After values.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from adapters.errors import ConnectionFailure, PermanentError, TransientError
from adapters.intacct import CreateProject, IntacctClient, IntacctCredentials, Outcome
from adapters.intacct.client import trusted_endpoint

CONTROL_OK = "<control><status>success</status><senderid>s</senderid><controlid>c</controlid></control>"
CREATE = CreateProject("job-1-v1", {"PROJECTID": "J-1", "NAME": "n", "PROJECTCATEGORY": "Contract"})


def auth_ok(timeout: str | None = None) -> str:
    extra = f"<sessiontimeout>{timeout}</sessiontimeout>" if timeout else ""
    return (
        "<authentication><status>success</status><userid>u</userid><companyid>co</companyid>"
        f"<sessiontimestamp>2030-01-01T00:00:00+00:00</sessiontimestamp>{extra}</authentication>"
    )


def document(*results: str, timeout: str | None = None) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><response>{CONTROL_OK}<operation>{auth_ok(timeout)}'
        f"{''.join(results)}</operation></response>"
    ).encode()


def success_for(root: ET.Element, data: str = "") -> bytes:
    parts = [
        f"<result><status>success</status><function>{f[0].tag}</function>"
        f"<controlid>{f.get('controlid')}</controlid>{data}</result>"
        for f in root.iterfind("operation/content/function")
    ]
    return document(*parts)


def xml(body: bytes | str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, status=status, headers=headers, content_type="text/xml")


Answer = Callable[[ET.Element, "Gateway"], Awaitable[web.StreamResponse]]


@dataclass
class Gateway:
    """Opens sessions S1, S2, …; every other request goes to ``answer`` (default: success)."""

    answer: Answer | None = None
    endpoint: str | None = None  # the <endpoint> announced; None: this gateway
    timeout: str | None = None  # the <sessiontimeout> announced with a session
    logins: int = 0
    requests: list[str] = field(default_factory=list)  # the session id of each non-login request
    url: str = ""
    request: web.Request | None = None  # the request being answered

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.request = request
        root = ET.fromstring(await request.read())
        if root.find("operation/content/function/getAPISession") is not None:
            self.logins += 1
            endpoint = self.endpoint or self.url
            return xml(
                document(
                    "<result><status>success</status><function>getAPISession</function><controlid>s</controlid>"
                    f"<data><api><sessionid>S{self.logins}</sessionid><endpoint>{endpoint}</endpoint></api></data>"
                    "</result>",
                    timeout=self.timeout,
                )
            )
        self.requests.append(root.findtext("operation/authentication/sessionid") or "")
        if self.answer is None:
            return xml(success_for(root))
        return await self.answer(root, self)


Start = Callable[..., Awaitable[tuple[IntacctClient, Gateway]]]


@pytest.fixture
def gateway(aiohttp_server: AiohttpServer, intacct_http: aiohttp.ClientSession) -> Start:
    async def start(gw: Gateway | None = None, **client_options: object) -> tuple[IntacctClient, Gateway]:
        gw = gw or Gateway()
        app = web.Application()
        app.router.add_post("/ia/xml/xmlgw.phtml", gw.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        gw.url = str(server.make_url("/ia/xml/xmlgw.phtml"))
        credentials = IntacctCredentials(gw.url, "s", "sp", "co", "u", "up")
        options: dict[str, object] = {"request_timeout": 2.0, **client_options}
        return IntacctClient(intacct_http, credentials, **options), gw  # type: ignore[arg-type]

    return start


def first_then_ok(first: Callable[[ET.Element], web.Response]) -> Answer:
    """The first non-login request gets ``first``; every later one succeeds."""

    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        return first(root) if len(gw.requests) == 1 else xml(success_for(root))

    return answer


# -- 1. a 200 that is not a complete <response> --------------------------------------------------------


def _cut(root: ET.Element) -> web.Response:
    body = success_for(root)
    return xml(body[: len(body) * 2 // 3])


FOREIGN_200 = {
    "html maintenance page": lambda root: web.Response(
        text="<!DOCTYPE html><html><body>Sage Intacct is down for maintenance</body></html>", content_type="text/html"
    ),
    "cloudflare page": lambda root: web.Response(
        text='<html><head><title>Just a moment...</title></head><body id="cf-error-details"></body></html>',
        content_type="text/html",
    ),
    "empty body": lambda root: xml(b""),
    "cut off after the functions ran": _cut,
    "junk before": lambda root: xml(b"\x00\x01junk" + success_for(root)),
    "junk after": lambda root: xml(success_for(root) + b"<extra/>"),
    "with a DTD": lambda root: xml(
        b'<?xml version="1.0"?><!DOCTYPE response [<!ELEMENT response ANY>]>' + success_for(root)[39:]
    ),
    "no control": lambda root: xml(b"<response><operation/></response>"),
    "no operation": lambda root: xml(f"<response>{CONTROL_OK}</response>"),
    "no result": lambda root: xml(document()),
    "result without status": lambda root: xml(
        document(f"<result><function>create</function><controlid>{CREATE.controlid}</controlid></result>")
    ),
}


@pytest.mark.parametrize("shape", sorted(FOREIGN_200))
async def test_a_200_that_is_not_a_complete_response_is_transient_with_unknown_outcome(
    gateway: Start, shape: str
) -> None:
    make = FOREIGN_200[shape]

    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        return make(root)

    client, _ = await gateway(Gateway(answer))
    with pytest.raises(TransientError) as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is True
    assert not isinstance(info.value, PermanentError)


@pytest.mark.parametrize("where", ["control", "result"])
async def test_xl03000003_inside_a_parsed_block_stays_permanent(gateway: Start, where: str) -> None:
    error = (
        "<errormessage><error><errorno>XL03000003</errorno><description>XML Parse schema error</description>"
        "</error></errormessage>"
    )

    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        if where == "control":
            return xml(f"<response><control><status>failure</status></control>{error}</response>")
        return xml(
            document(
                f"<result><status>failure</status><function>create</function><controlid>{CREATE.controlid}"
                f"</controlid>{error}</result>"
            )
        )

    client, _ = await gateway(Gateway(answer))
    if where == "control":
        with pytest.raises(PermanentError) as info:
            await client.execute([CREATE])
        assert info.value.errorno == "XL03000003"
    else:
        [result] = await client.execute([CREATE])
        assert result.outcome is Outcome.PERMANENT


# -- 2. a dead session, whatever the words -------------------------------------------------------------


def _auth_failure(userid: str, companyid: str, errorno: str, text: str) -> web.Response:
    return xml(
        f"<response>{CONTROL_OK}<operation><authentication><status>failure</status><userid>{userid}</userid>"
        f"<companyid>{companyid}</companyid></authentication><errormessage><error><errorno>{errorno}</errorno>"
        f"<description></description><description2>{text}</description2><correction></correction></error>"
        "</errormessage></operation></response>"
    )


SESSION_DEATHS = {
    "invalid session text": lambda root: _auth_failure("", "", "XL03000006", "Invalid session q...."),
    "status failure, sign-in incorrect": lambda root: _auth_failure(
        "u", "co", "XL03000006", "Sign-in information is incorrect"
    ),
    "empty userid and companyid": lambda root: _auth_failure("", "", "XL03000006", ""),
    "http 401 XMLGW_JPP0002": lambda root: xml(
        "<response><control><status>failure</status></control><errormessage><error><errorno>XMLGW_JPP0002"
        "</errorno><description>Sign-in information is incorrect. Please check your request.</description>"
        "</error></errormessage></response>",
        status=401,
    ),
}


@pytest.mark.parametrize("wording", sorted(SESSION_DEATHS))
async def test_a_dead_session_is_dropped_whatever_the_words(gateway: Start, wording: str) -> None:
    client, gw = await gateway(Gateway(first_then_ok(SESSION_DEATHS[wording])))
    [result] = await client.execute([CREATE])
    assert result.outcome is Outcome.SUCCESS
    assert gw.logins == 2  # dropped, logged in once more
    assert gw.requests == ["S1", "S2"]  # and resent on the fresh session


async def test_a_session_without_timeout_is_renewed_after_session_max_age(gateway: Start) -> None:
    client, gw = await gateway(Gateway(timeout=None), session_max_age=0.4)
    await client.execute([CREATE])
    await client.execute([CREATE])
    assert gw.logins == 1
    await asyncio.sleep(0.5)
    await client.execute([CREATE])
    assert gw.logins == 2
    assert gw.requests == ["S1", "S1", "S2"]


async def test_an_announced_timeout_still_rules(gateway: Start) -> None:
    client, gw = await gateway(Gateway(timeout="2099-01-01T00:00:00+00:00"), session_max_age=0.2)
    await client.execute([CREATE])
    await asyncio.sleep(0.3)
    await client.execute([CREATE])
    assert gw.logins == 1


# -- 3. DL02000001 -----------------------------------------------------------------------------------


async def test_dl02000001_on_a_function_is_transient(gateway: Start) -> None:
    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        return xml(
            document(
                f"<result><status>failure</status><function>create</function><controlid>{CREATE.controlid}"
                "</controlid><errormessage><error><errorno>DL02000001</errorno><description></description>"
                "<description2>There was an error processing the request.</description2><correction></correction>"
                "</error></errormessage></result>"
            )
        )

    client, _ = await gateway(Gateway(answer))
    [result] = await client.execute([CREATE])
    assert result.outcome is Outcome.TRANSIENT
    assert result.error_fields["errorno"] == "DL02000001"


# -- 4. the session endpoint --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "configured", "trusted"),
    [
        ("https://api.intacct.com/ia/xml/xmlgw.phtml", "https://api.intacct.com/ia/xml/xmlgw.phtml", True),
        ("https://api-eu.intacct.com/ia/xml/xmlgw.phtml", "https://api.intacct.com/ia/xml/xmlgw.phtml", True),
        ("https://gw.example.net/ia/xml/xmlgw.phtml", "https://gw.example.net/x", True),
        ("https://intacct.com.evil.example/gw", "https://api.intacct.com/ia/xml/xmlgw.phtml", False),
        ("https://evilintacct.com/gw", "https://api.intacct.com/ia/xml/xmlgw.phtml", False),
        ("http://api.intacct.com/ia/xml/xmlgw.phtml", "https://api.intacct.com/ia/xml/xmlgw.phtml", False),
        ("ftp://api.intacct.com/gw", "https://api.intacct.com/ia/xml/xmlgw.phtml", False),
        ("https://other.example/gw", "https://gw.example.net/x", False),
        ("http://127.0.0.1:9/gw", "http://127.0.0.1:8/gw", True),
        ("http://[::1]:9/gw", "http://localhost:8/gw", True),
        ("http://127.0.0.1:9/gw", "https://api.intacct.com/ia/xml/xmlgw.phtml", False),
        ("http://10.0.0.5/gw", "http://127.0.0.1:8/gw", False),
        ("not a url at all", "https://api.intacct.com/ia/xml/xmlgw.phtml", False),
    ],
)
def test_the_session_endpoint_trust_rule(endpoint: str, configured: str, trusted: bool) -> None:
    if trusted:
        assert trusted_endpoint(endpoint, configured) == endpoint
    else:
        with pytest.raises(ConnectionFailure, match="session endpoint"):
            trusted_endpoint(endpoint, configured)


async def test_an_untrusted_session_endpoint_gets_nothing(
    gateway: Start, aiohttp_server: AiohttpServer
) -> None:
    received: list[bytes] = []

    async def elsewhere(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=500)

    other = web.Application()
    other.router.add_post("/gw", elsewhere)
    server = await aiohttp_server(other, host="127.0.0.1")
    # Same loopback address, so http would pass: the announced endpoint uses another host name.
    evil = str(server.make_url("/gw")).replace("127.0.0.1", "evil.example")
    client, _ = await gateway(Gateway(endpoint=evil))
    with pytest.raises(ConnectionFailure, match="evil.example"):
        await client.execute([CREATE])
    assert received == []


# -- 6. bounded reads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("announced", [True, False])
async def test_an_oversized_answer_is_transient_and_not_read_whole(gateway: Start, announced: bool) -> None:
    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        if announced:  # Content-Length says it all before a byte is read
            return xml(success_for(root) + b" " * 200_000)
        response = web.StreamResponse(headers={"Content-Type": "text/xml"})
        response.enable_chunked_encoding()
        assert gw.request is not None
        await response.prepare(gw.request)
        try:
            for _ in range(100):  # 1 MB in chunks, never announced
                await response.write(b" " * 10_000)
        except ConnectionResetError:
            pass  # the client stopped reading
        return response

    client, gw = await gateway(Gateway(answer), max_body_bytes=50_000)
    with pytest.raises(TransientError, match="exceeds 50000 bytes") as info:
        await client.execute([CREATE])
    assert info.value.outcome_unknown is True


async def test_query_paging_advances_by_rows_received_and_stops_at_total_plus_margin(gateway: Start) -> None:
    offsets: list[int] = []

    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        # A broken upstream: always claims count=1 and more remaining, pages of 2 rows, for ever.
        offset = int(root.findtext(".//query/offset") or 0)
        offsets.append(offset)
        rows = "".join(f"<PROJECT><PROJECTID>J-{offset + i}</PROJECTID></PROJECT>" for i in range(2))
        data = f'<data listtype="PROJECT" count="1" totalcount="6" numremaining="999">{rows}</data>'
        return xml(success_for(root, data))

    client, _ = await gateway(Gateway(answer))
    seen = [p.project_id async for page in client.iter_projects(["J-%"], page_size=2) for p in page]
    assert offsets == [0, 2, 4, 6, 8]  # by rows received (2), not by count (1); 6 + 2 pages of margin
    assert seen == [f"J-{i}" for i in range(10)]


async def test_a_query_page_without_progress_is_an_error(gateway: Start) -> None:
    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        data = '<data listtype="PROJECT" count="0" totalcount="50" numremaining="50"></data>'
        return xml(success_for(root, data))

    client, _ = await gateway(Gateway(answer))
    with pytest.raises(TransientError, match="no rows"):
        async for _ in client.iter_projects(["J-%"], page_size=10):
            pass


# -- 7. redirects -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_a_connection_error_naming_the_host(gateway: Start, status: int) -> None:
    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": "https://collector.evil.example/steal"})

    client, gw = await gateway(Gateway(answer))
    with pytest.raises(ConnectionFailure, match="collector.evil.example"):
        await client.execute([CREATE])
    assert len(gw.requests) == 1  # not followed


# -- 10. Retry-After ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("99999999", 30.0), ("1" * 400, None), ("inf", None), ("nan", None), ("-5", None), ("soon", None)],
)
async def test_retry_after_is_clamped_and_junk_is_ignored(gateway: Start, header: str, expected: float | None) -> None:
    async def answer(root: ET.Element, gw: Gateway) -> web.StreamResponse:
        return xml(b"", status=429, headers={"Retry-After": header})

    client, _ = await gateway(Gateway(answer), retry_after_max=30.0)
    with pytest.raises(TransientError) as info:
        await client.execute([CREATE])
    assert info.value.retry_after == expected
