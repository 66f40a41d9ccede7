"""Fuzzing the Intacct response handling with mutations of the real samples.

Whatever the gateway (or something in between) answers, `parse_response` either parses it or raises
the adapter's own PermanentError/TransientError, never another exception; and a whole client call
(HTTP status, control, authentication, results) ends in a result or an AdapterError. Hostile XML
(entities, billion laughs, external entities) is refused; huge or deep documents end quickly.
"""

from __future__ import annotations

import copy
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.errors import AdapterError, PermanentError, TransientError
from adapters.intacct import CreateProject, IntacctClient, IntacctCredentials, parse_response
from adapters.intacct.xml import ParsedResponse
from tests.resilience.support import Figures

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "intacct"
SAMPLES = {p.name: p.read_bytes() for p in sorted(FIXTURES.glob("*.xml"))}
ALLOWED = (PermanentError, TransientError)

HOSTILE_PREFIXES = [
    # billion laughs
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    # external entity
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    # parameter entity, remote DTD
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:1/evil.dtd"> %p;]>',
    b'<?xml version="1.0"?><!DOCTYPE response SYSTEM "http://127.0.0.1:1/intacct.dtd">',
]


def _elements(root: ET.Element) -> list[tuple[ET.Element, ET.Element]]:
    """(parent, child) pairs of a tree."""
    return [(parent, child) for parent in root.iter() for child in parent]


def mutate(rng: random.Random, body: bytes) -> bytes:
    """One random mutation of a well-formed sample: structural, textual or byte-level."""
    op = rng.choice(["truncate", "garbage", "flip", "duplicate", "remove", "retext", "reattr", "encoding",
                     "hostile_prefix", "entity_ref", "nest", "huge_attribute", "empty", "swap_root"])
    if op == "truncate":
        return body[: rng.randrange(len(body) + 1)]
    if op == "garbage":
        at = rng.randrange(len(body) + 1)
        return body[:at] + rng.randbytes(rng.randrange(1, 64)) + body[at:]
    if op == "flip":
        data = bytearray(body)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if op == "empty":
        return rng.choice([b"", b" ", b"\x00", b"<", b"<response/>", b"<?xml version='1.0'?>"])
    if op == "hostile_prefix":
        return rng.choice(HOSTILE_PREFIXES) + body.split(b"?>", 1)[-1]
    if op == "encoding":
        enc = rng.choice([b"utf-16", b"bogus", b"shift_jis", b"iso-8859-1", b"ascii", b"utf-32", b"cp1252"])
        return body.replace(b'encoding="UTF-8"', b'encoding="' + enc + b'"', 1)
    if op == "nest":  # deep nesting, as bytes (ElementTree would recurse to serialize it)
        depth = rng.randrange(10, 50_000)
        tags = [rng.choice([b"operation", b"result", b"data", b"errormessage", b"x"]) for _ in range(depth)]
        nested = b"".join(b"<" + t + b">" for t in tags) + b"".join(b"</" + t + b">" for t in reversed(tags))
        return body.replace(b"</response>", nested + b"</response>", 1)
    if op == "entity_ref":
        at = body.find(b"</description2>")
        return body[:at] + b"&undefined;&#0;&#xD800;" + body[at:] if at >= 0 else body + b"&x;"
    root = ET.fromstring(body)  # the samples themselves are trusted
    pairs = _elements(root)
    if op == "duplicate" and pairs:
        parent, child = rng.choice(pairs)
        parent.insert(list(parent).index(child), copy.deepcopy(child))
    elif op == "remove" and pairs:
        parent, child = rng.choice(pairs)
        parent.remove(child)
    elif op == "retext" and pairs:
        _, child = rng.choice(pairs)
        child.text = rng.choice(["", " ", "-1", "9" * 5000, "NaN", "1e309", "٣", "success", "failure",
                                 "2026-13-45T99:99:99", "aborted", "\u202e", "x" * 100_000])
    elif op == "reattr" and pairs:
        _, child = rng.choice(pairs)
        for name in ("count", "totalcount", "numremaining", "offset", "listtype"):
            child.set(name, rng.choice(["", "-5", "abc", "9" * 400, "1.5", "0"]))
    elif op == "huge_attribute":
        root.set("junk", "A" * rng.randrange(10_000, 2_000_000))
    elif op == "swap_root":
        root.tag = rng.choice(["request", "Response", "html", "response"])
    return ET.tostring(root)


def check_parse(body: bytes) -> str:
    try:
        parsed = parse_response(body)
    except ALLOWED as exc:
        return type(exc).__name__
    assert isinstance(parsed, ParsedResponse)
    for result in parsed.results:  # what the client reads of each result must be sound too
        _ = (result.outcome, result.projects, result.errors, dict(result.data_attrs))
    return "parsed"


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(SAMPLES)), st.randoms(use_true_random=False))
def test_mutated_samples_parse_or_raise_adapter_errors(sample: str, rng: random.Random) -> None:
    body = mutate(rng, SAMPLES[sample])
    started = time.monotonic()
    check_parse(body)
    assert time.monotonic() - started < 5, "a hostile document must not take long to refuse"


@pytest.mark.parametrize("prefix", HOSTILE_PREFIXES, ids=["billion_laughs", "external_entity", "parameter_entity",
                                                          "external_dtd"])
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_entities_and_dtds_are_refused(prefix: bytes, sample: str) -> None:
    # Never expanded nor fetched; like any body that is not a plain Intacct <response>, the outcome
    # of the request it answers is unknown.
    body = prefix + SAMPLES[sample].split(b"?>", 1)[-1]
    with pytest.raises(TransientError, match="incomplete response") as info:
        parse_response(body)
    assert info.value.outcome_unknown


# ---- the whole client call against a server answering anything -----------------------------------


@pytest.fixture
async def hostile_gateway() -> AsyncIterator[tuple[TestServer, list[tuple[int, bytes]]]]:
    """A gateway that answers each request with the next (status, body) of a queue."""
    answers: list[tuple[int, bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        status, body = answers.pop(0) if answers else (200, SAMPLES["sessionInvalid.xml"])
        return web.Response(status=status, body=body, content_type="application/xml")

    app = web.Application()
    app.router.add_post("/ia/xml/xmlgw.phtml", handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server, answers
    finally:
        await server.close()


async def test_client_calls_end_in_results_or_adapter_errors(
    hostile_gateway: tuple[TestServer, list[tuple[int, bytes]]],
) -> None:
    figures = Figures("parser_fuzz_client")
    server, answers = hostile_gateway
    url = str(server.make_url("/ia/xml/xmlgw.phtml"))
    credentials = IntacctCredentials(url, "sender", "sender-pw", "CO", "user", "user-pw", None)
    rng = random.Random(20261125)
    session_doc = (b'<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status>'
                   b"</control><operation><authentication><status>success</status></authentication><result>"
                   b"<status>success</status><function>getAPISession</function><controlid>x</controlid><data>"
                   b"<api><sessionid>S1</sessionid><endpoint>" + url.encode() + b"</endpoint></api></data>"
                   b"</result></operation></response>")
    outcomes: dict[str, int] = {}
    calls = 300
    async with aiohttp.ClientSession() as http:
        client = IntacctClient(http, credentials, max_concurrent_requests=2, request_timeout=5)
        for n in range(calls):
            answers.clear()
            # Usually a good session first, so that the mutated answer meets the function call.
            if rng.random() < 0.7:
                answers.append((200, session_doc))
            status = rng.choice([200] * 6 + [401, 429, 500, 502, 503, 524, 400, 404, 302, 413])
            for _ in range(3):
                answers.append((status, mutate(rng, rng.choice(list(SAMPLES.values())))))
            call = rng.choice(["execute", "read", "probe", "query"])
            try:
                if call == "execute":
                    await client.execute([CreateProject(f"c-{n}", {"PROJECTID": f"J-{n}", "NAME": "x",
                                                                    "PROJECTCATEGORY": "Contract"})])
                elif call == "read":
                    await client.read_projects([f"J-{n}", f"J-{n + 1}"])
                elif call == "probe":
                    await client.probe()
                else:
                    async for _page in client.iter_projects(["J-%"], page_size=10):
                        break
                key = f"{call}:ok"
            except AdapterError as exc:
                key = f"{call}:{type(exc).__name__}"
            outcomes[key] = outcomes.get(key, 0) + 1
            client.update_credentials(credentials)  # a fresh session each time
    figures.update(calls=calls, outcomes=dict(sorted(outcomes.items())))
    figures.done()
    assert sum(outcomes.values()) == calls
