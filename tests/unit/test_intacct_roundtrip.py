"""Property tests: any XML-legal text travels exactly from the adapter to the simulator and back."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.intacct import CreateProject, IntacctClient, IntacctCredentials, UpdateProject, build_request
from simulators.intacct import STATE, create_app, xmlio

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
legal_chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF).filter(lambda c: not _ILLEGAL.match(c))
legal_text = st.text(legal_chars, max_size=200)
# Names that stress escaping: markup, quotes, emoji, right-to-left, combining marks, line ends.
tricky = st.sampled_from(
    [
        "&",
        "<",
        ">",
        "]]>",
        '"',
        "'",
        "&amp;",
        "\U0001f600",
        "\u05e9\u05dc\u05d5\u05dd",
        "\u202e",
        "e\u0301",
        "\r\n",
        "\r",
        "\t",
        " ",
        "\u00a0",
        "\U0010fffd",
        "\x7f",
    ]
)
names = st.lists(st.one_of(legal_text.map(lambda t: t[:20]), tricky), max_size=12).map("".join).map(lambda s: s[:200])
illegal_chars = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x1F).filter(lambda c: c not in "\t\n\r"),
    st.sampled_from(["\ud800", "\udfff", "\ufffe", "\uffff"]),
)
CREDENTIALS = IntacctCredentials("http://127.0.0.1:1/ia/xml/xmlgw.phtml", "s", "sp", "co", "u", "up")


@settings(max_examples=300, deadline=None)
@given(name=names, category=legal_text, parent=legal_text)
def test_request_fields_round_trip_through_the_simulator_parser(name: str, category: str, parent: str) -> None:
    fields = {"PROJECTID": "J-1", "NAME": name, "PROJECTCATEGORY": category, "PARENTID": parent}
    body = build_request(
        CREDENTIALS,
        [CreateProject("c1", fields), UpdateProject("c2", "J-1", {"NAME": name, "CUSTOMERID": None})],
        session_id=None,
        control_id="ctl",
    )
    request = xmlio.parse_request(body)
    assert [c.controlid for c in request.calls] == ["c1", "c2"]
    assert xmlio.objects(request.calls[0]) == [("PROJECT", fields)]
    assert xmlio.objects(request.calls[1]) == [("PROJECT", {"PROJECTID": "J-1", "NAME": name, "CUSTOMERID": ""})]
    assert request.login is not None and request.login.password == "up"


@settings(max_examples=100, deadline=None)
@given(before=legal_text, bad=illegal_chars, after=legal_text)
def test_illegal_characters_raise_value_error(before: str, bad: str, after: str) -> None:
    with pytest.raises(ValueError):
        build_request(
            CREDENTIALS, [CreateProject("c1", {"NAME": before + bad + after})], session_id="s", control_id="c"
        )


async def _create_and_read(name: str) -> tuple[str | None, str | None]:
    app = create_app()
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("/ia/xml/xmlgw.phtml"))
        client = IntacctClient(http, IntacctCredentials(url, "s", "sp", "co", "u", "up"), request_timeout=5)
        [result] = await client.execute(
            [CreateProject("c1", {"PROJECTID": "J-1", "NAME": name, "PROJECTCATEGORY": "Contract"})]
        )
        assert result.status == "success", result.errors
        stored = app[STATE].projects.get("J-1")
        read = await client.read_projects(["J-1"])
        return (stored.name if stored else None), read["J-1"].name


@settings(max_examples=40, deadline=None)
@given(name=names.map(lambda s: ("N" + s)[:200]))
def test_name_stored_and_read_back_equals_what_was_sent(name: str) -> None:
    stored, read = asyncio.run(_create_and_read(name))
    assert stored == name
    assert read == name
