"""The Intacct simulator on its own: wire shape, PROJECT rules, queries, control API and command line."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulators.intacct import IntacctSimOptions
from tests.plugins.simulators import IntacctSim, IntacctSimFactory

REPO = Path(__file__).resolve().parents[2]


def envelope(
    *functions: str,
    auth: str = "<login><userid>u</userid><companyid>co</companyid><password>p</password></login>",
    sender: str = "<senderid>s</senderid><password>sp</password>",
) -> bytes:
    """A raw request, written out by hand so that these tests do not depend on the adapter."""
    content = "".join(f'<function controlid="f{i}">{f}</function>' for i, f in enumerate(functions))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><request><control>'
        f"{sender}<controlid>ctl</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion>"
        f'<includewhitespace>false</includewhitespace></control><operation transaction="false">'
        f"<authentication>{auth}</authentication><content>{content}</content></operation></request>"
    ).encode()


def project(**fields: str) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f"<PROJECT>{inner}</PROJECT>"


def create(pid: str, **fields: str) -> str:
    return f"<create>{project(PROJECTID=pid, **({'NAME': 'n', 'PROJECTCATEGORY': 'Contract'} | fields))}</create>"


async def post(http: aiohttp.ClientSession, sim: IntacctSim, body: bytes) -> ET.Element:
    async with http.post(sim.url, data=body, headers={"Content-Type": "application/xml"}) as response:
        assert response.status == 200
        assert response.content_type == "text/xml"
        return ET.fromstring(await response.read())


def errors_of(result: ET.Element) -> list[tuple[str, str]]:
    return [
        (e.findtext("errorno") or "", e.findtext("description2") or "") for e in result.iterfind("errormessage/error")
    ]


async def test_response_shape_mirrors_the_real_samples(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession
) -> None:
    root = await post(intacct_http, intacct_sim, envelope(create("J-1"), create("J-1")))
    assert [e.tag for e in root] == ["control", "operation"]
    assert [e.tag for e in root.find("control")] == ["status", "senderid", "controlid", "uniqueid", "dtdversion"]  # type: ignore[union-attr]
    operation = root.find("operation")
    assert operation is not None
    assert [e.tag for e in operation] == ["authentication", "result", "result"]
    assert [e.tag for e in operation.find("authentication")] == [  # type: ignore[union-attr]
        "status",
        "userid",
        "companyid",
        "locationid",
        "sessiontimestamp",
    ]
    ok, duplicate = operation.findall("result")
    assert [e.tag for e in ok] == ["status", "function", "controlid", "data"]
    assert ET.tostring(ok.find("data")) == (  # type: ignore[arg-type]
        b'<data listtype="objects" count="1"><project><RECORDNO>1</RECORDNO><PROJECTID>J-1</PROJECTID></project></data>'
    )
    assert [e.tag for e in duplicate] == ["status", "function", "controlid", "errormessage"]
    assert duplicate.findtext("status") == "failure"
    assert errors_of(duplicate) == [
        ("BL34000061", "Another Project with the given value(s) J-1  already exists"),
        ("BL01001973", "Could not create project record!"),
        ("BL01001973", "Error while saving the Project info"),
    ]
    assert intacct_sim.state.stats.duplicate_create_attempts == 1


@pytest.mark.parametrize(
    ("function", "errorno", "text"),
    [
        (create("J-2", NAME=""), "BL01001973", "Required field NAME is missing for Project."),
        (
            "<create><PROJECT><PROJECTID>J-2</PROJECTID><NAME>n</NAME></PROJECT></create>",
            "BL01001973",
            "Required field PROJECTCATEGORY is missing for Project.",
        ),
        (create("J-2", PARENTID="P-404"), "BL01001973", "Invalid Parent 'P-404' specified."),
        (create("J-2", PARENTID="J-2"), "BL01001973", "Invalid Parent 'J-2' specified."),
        (create("J-2", CUSTOMERID="C404"), "BL01001973", "Customer 'C404' specified is not valid."),
        (
            create("J-2", NAME="x" * 201),
            "BL01001973",
            "The value of NAME is too long: 201 characters, at most 200 allowed.",
        ),
        (
            create("J-" + "9" * 19),
            "BL01001973",
            "The value of PROJECTID is too long: 21 characters, at most 20 allowed.",
        ),
        (create("J-2", STATUS="closed"), "BL01001973", "Invalid STATUS 'closed'. Valid values are: active, inactive."),
        (
            create("J-2", DESCRIPTION="d"),
            "BL01001973",
            "Field 'DESCRIPTION' is not supported on PROJECT by this simulator.",
        ),
        (
            "<create>" + project(PROJECTID="J-2", NAME="a", PROJECTCATEGORY="C") * 2 + "</create>",
            "BL01001973",
            "Found 2 objects in <create>: send exactly one PROJECT per function.",
        ),
        (
            "<create><CUSTOMER><CUSTOMERID>C9</CUSTOMERID></CUSTOMER></create>",
            "BL01001973",
            "Object 'CUSTOMER' is not supported.",
        ),
        (
            "<update><PROJECT><PROJECTID>J-404</PROJECTID><NAME>x</NAME></PROJECT></update>",
            "Cannot update non-existing PROJECT with PROJECTID=J-404.",
            "",
        ),
        (
            "<update><PROJECT><PROJECTID>J-1</PROJECTID><NAME></NAME></PROJECT></update>",
            "BL01001973",
            "Required field NAME is missing for Project.",
        ),
        (
            "<update><PROJECT><PROJECTID>P-1</PROJECTID><PARENTID>J-1</PARENTID></PROJECT></update>",
            "BL01001973",
            "Project 'P-1' cannot have 'J-1' as its parent: it would be a cycle.",
        ),
        (
            "<delete><object>PROJECT</object><keys>1</keys></delete>",
            "BL01001973",
            "Function 'delete' is not supported by the simulator.",
        ),
    ],
)
async def test_project_rules(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession, function: str, errorno: str, text: str
) -> None:
    await post(intacct_http, intacct_sim, envelope(create("P-1"), create("J-1", PARENTID="P-1")))
    root = await post(intacct_http, intacct_sim, envelope(function))
    [result] = root.iterfind("operation/result")
    assert result.findtext("status") == "failure"
    assert errors_of(result)[0] == (errorno, text)
    assert len(intacct_sim.projects()) == 2  # nothing applied


async def test_update_changes_only_sent_fields_and_empty_clears(
    intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession
) -> None:
    await post(intacct_http, intacct_sim, envelope(create("P-1"), create("J-1", PARENTID="P-1", CUSTOMERID="C1")))
    root = await post(
        intacct_http,
        intacct_sim,
        envelope(
            "<update><PROJECT><PROJECTID>J-1</PROJECTID><NAME>New &amp; improved</NAME><CUSTOMERID></CUSTOMERID>"
            "<STATUS>inactive</STATUS></PROJECT></update>"
        ),
    )
    assert root.findtext("operation/result/status") == "success"
    row = intacct_sim.projects()["J-1"]
    created, modified = row.pop("WHENCREATED"), row.pop("WHENMODIFIED")
    assert isinstance(created, str) and isinstance(modified, str) and modified > created  # audit fields
    assert row == {
        "RECORDNO": 2,
        "PROJECTID": "J-1",
        "NAME": "New & improved",
        "PROJECTCATEGORY": "Contract",
        "PARENTID": "P-1",
        "CUSTOMERID": None,
        "STATUS": "inactive",
    }


async def test_read_by_name(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    await post(intacct_http, intacct_sim, envelope(create("J-1", CUSTOMERID="C2"), create("J-2")))
    root = await post(
        intacct_http,
        intacct_sim,
        envelope(
            "<readByName><object>PROJECT</object><keys>J-2, J-404,J-1</keys>"
            "<fields>RECORDNO,PROJECTID,CUSTOMERID,PARENTID</fields></readByName>",
            "<readByName><object>PROJECT</object><keys>J-404</keys><fields>*</fields></readByName>",
            "<readByName><object>PROJECT</object><keys>J-1</keys><fields>NOPE</fields></readByName>",
        ),
    )
    found, missing, bad = root.iterfind("operation/result")
    assert ET.tostring(found.find("data"), short_empty_elements=False) == (  # type: ignore[arg-type]
        b'<data listtype="PROJECT" count="2"><PROJECT><RECORDNO>2</RECORDNO><PROJECTID>J-2</PROJECTID>'
        b"<CUSTOMERID></CUSTOMERID><PARENTID></PARENTID></PROJECT><PROJECT><RECORDNO>1</RECORDNO>"
        b"<PROJECTID>J-1</PROJECTID><CUSTOMERID>C2</CUSTOMERID><PARENTID></PARENTID></PROJECT></data>"
    )
    assert (missing.findtext("status"), missing.find("data").get("count")) == ("success", "0")  # type: ignore[union-attr]
    assert errors_of(bad) == [("Invalid fields list NOPE", "")]


def query(
    filter_: str = "",
    pagesize: int = 2000,
    offset: int = 0,
    order: str = "<ascending/>",
    select: str = "RECORDNO,PROJECTID",
) -> str:
    fields = "".join(f"<field>{f}</field>" for f in select.split(","))
    return (
        f"<query><object>PROJECT</object><select>{fields}</select>{filter_}"
        f"<orderby><order><field>RECORDNO</field>{order}</order></orderby>"
        f"<pagesize>{pagesize}</pagesize><offset>{offset}</offset></query>"
    )


def like(value: str) -> str:
    return f"<like><field>PROJECTID</field><value>{value}</value></like>"


async def test_query_filters_pages_and_orders(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    ids = ["J-1", "P-1", "J-2", "X-1", "J-10", "j-3"]
    await post(intacct_http, intacct_sim, envelope(*(create(i) for i in ids)))
    root = await post(
        intacct_http,
        intacct_sim,
        envelope(
            query(f"<filter><or>{like('J-%')}{like('P-_')}</or></filter>", pagesize=2, offset=1),
            query(f"<filter>{like('J-1%')}</filter>", order="<descending/>"),
            query(
                f"<filter><and>{like('%-1')}<notequalto><field>PROJECTID</field><value>X-1</value></notequalto></and></filter>"
            ),
            query("<filter><in><field>PROJECTID</field><value>X-1</value><value>J-2</value></in></filter>"),
            query("<filter><greaterthan><field>RECORDNO</field><value>4</value></greaterthan></filter>"),
            query(pagesize=2001),
            query(select="RECORDNO,BOGUS"),
            "<query><object>VENDOR</object><select><field>RECORDNO</field></select></query>",
        ),
    )
    paged, descending, both, in_, greater, too_big, bad_field, other = root.iterfind("operation/result")
    data = paged.find("data")
    assert data is not None
    assert dict(data.attrib) == {
        "listtype": "PROJECT",
        "count": "2",
        "totalcount": "4",
        "offset": "1",
        "numremaining": "1",
    }
    assert [p.findtext("PROJECTID") for p in data] == ["P-1", "J-2"]
    assert [p.findtext("PROJECTID") for p in descending.find("data")] == ["J-10", "J-1"]  # type: ignore[union-attr]
    assert [p.findtext("PROJECTID") for p in both.find("data")] == ["J-1", "P-1"]  # type: ignore[union-attr]
    assert [p.findtext("PROJECTID") for p in in_.find("data")] == ["J-2", "X-1"]  # type: ignore[union-attr]
    assert [p.findtext("PROJECTID") for p in greater.find("data")] == ["J-10", "j-3"]  # type: ignore[union-attr]
    assert errors_of(too_big) == [("Query Failed", "pagesize must be between 1 and 2000")]
    assert errors_of(bad_field) == [("Query Failed", "Invalid field BOGUS in select")]
    assert errors_of(other) == [("Query Failed", "Object definition VENDOR not found")]


async def test_query_over_100k_projects_is_fast(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    store = intacct_sim.state.projects
    for i in range(100_000):
        store.create({"PROJECTID": f"{'J' if i % 3 else 'P'}-{i}", "NAME": f"n{i}", "PROJECTCATEGORY": "C"}, ())
    body = envelope(query(f"<filter>{like('J-%')}</filter>", offset=40_000, select="RECORDNO,PROJECTID,NAME"))
    started = time.perf_counter()
    first = await post(intacct_http, intacct_sim, body)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    await post(intacct_http, intacct_sim, body.replace(b"<offset>40000<", b"<offset>42000<"))
    next_s = time.perf_counter() - started
    data = first.find("operation/result/data")
    assert data is not None and data.get("count") == "2000" and data.get("totalcount") == "66666"
    print(f"first page {first_s * 1000:.0f} ms, next page {next_s * 1000:.0f} ms")
    assert first_s < 2.0 and next_s < 1.0  # generous bounds: a loaded CI box, not a benchmark


async def test_schema_and_credential_errors(
    make_intacct_sim: IntacctSimFactory, intacct_http: aiohttp.ClientSession
) -> None:
    sim = await make_intacct_sim(IntacctSimOptions(sender_id="s", sender_password="sp", user_password="p"))
    broken = await post(intacct_http, sim, b"<request><control>")
    assert broken.findtext("control/status") == "failure"
    assert broken.findtext("errormessage/error/errorno") == "XL03000003"
    laughs = await post(intacct_http, sim, b'<!DOCTYPE r [<!ENTITY a "aaaa">]><request>&a;</request>')
    assert laughs.findtext("errormessage/error/errorno") == "XL03000003"
    no_controlid = await post(
        intacct_http, sim, envelope().replace(b"<content>", b"<content><function><query/></function>")
    )
    assert no_controlid.findtext("errormessage/error/errorno") == "XL03000003"
    sender = await post(intacct_http, sim, envelope(sender="<senderid>s</senderid><password>bad</password>"))
    assert sender.findtext("errormessage/error/description2") == "Incorrect Intacct XML Partner ID or password."
    login = await post(
        intacct_http,
        sim,
        envelope(
            create("J-1"), auth="<login><userid>u</userid><companyid>co</companyid><password>bad</password></login>"
        ),
    )
    assert login.findtext("operation/authentication/status") == "failure"
    assert login.findtext("operation/errormessage/error/description2") == "Sign-in information is incorrect"
    assert login.find("operation/result") is None
    session = await post(intacct_http, sim, envelope(create("J-1"), auth="<sessionid>nope</sessionid>"))
    assert session.findtext("operation/errormessage/error/description2") == "Invalid session"
    assert session.findtext("operation/authentication/userid") == ""
    assert sim.state.stats.auth_failures == 3 and not sim.projects()


async def test_get_api_session_and_session_use(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    root = await post(
        intacct_http, intacct_sim, envelope("<getAPISession><locationid>East</locationid></getAPISession>")
    )
    assert root.findtext("operation/authentication/sessiontimeout")
    api = root.find("operation/result/data/api")
    assert api is not None and [e.tag for e in api] == ["sessionid", "endpoint", "locationid"]
    assert api.findtext("endpoint") == intacct_sim.url
    assert api.findtext("locationid") == "East"
    used = await post(
        intacct_http, intacct_sim, envelope(create("J-1"), auth=f"<sessionid>{api.findtext('sessionid')}</sessionid>")
    )
    assert used.findtext("operation/authentication/locationid") == "East"
    assert used.findtext("operation/result/status") == "success"


async def test_control_api(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    async def call(method: str, path: str, json: object = None) -> tuple[int, Any]:
        async with intacct_http.request(method, intacct_sim.control_url(path), json=json) as response:
            return response.status, (await response.json() if response.status != 204 else None)

    assert await call("POST", "/_sim/customers", {"ids": ["C7", "C8"]}) == (201, {"count": 4})
    assert (await call("POST", "/_sim/customers", {"CUSTOMERID": "C9", "NAME": "Nine"}))[0] == 201
    status, body = await call("GET", "/_sim/customers")
    assert status == 200 and {"CUSTOMERID": "C9", "NAME": "Nine"} in body["customers"]
    status, body = await call("POST", "/_sim/projects", {"PROJECTID": "P-1", "NAME": "Parent"})
    assert status == 201 and body["PROJECTCATEGORY"] == "Contract" and body["RECORDNO"] == 1
    status, body = await call(
        "POST",
        "/_sim/projects",
        {
            "projects": [
                {"PROJECTID": "J-1", "NAME": "A", "PARENTID": "P-1", "CUSTOMERID": "C9"},
                {"PROJECTID": "J-2", "NAME": "B"},
            ]
        },
    )
    assert status == 201 and body["count"] == 2
    assert (await call("POST", "/_sim/projects", {"PROJECTID": "J-1", "NAME": "A"}))[0] == 409
    assert (await call("POST", "/_sim/projects", {"PROJECTID": "J-3", "NAME": "\x00"}))[0] == 400
    assert (await call("POST", "/_sim/projects", {"PROJECTID": "J-3", "NAME": "x", "BOGUS": 1}))[0] == 400
    status, body = await call("PATCH", "/_sim/projects/J-1", {"NAME": "Renamed", "PARENTID": None})
    assert status == 200 and body["NAME"] == "Renamed" and body["PARENTID"] is None
    assert (await call("PATCH", "/_sim/projects/J-404", {"NAME": "x"}))[0] == 404
    assert (await call("GET", "/_sim/projects/J-1"))[1]["NAME"] == "Renamed"
    assert (await call("DELETE", "/_sim/projects/J-2"))[0] == 204
    assert (await call("GET", "/_sim/projects/J-2"))[0] == 404
    status, body = await call("GET", "/_sim/projects")
    assert [p["PROJECTID"] for p in body["projects"]] == ["P-1", "J-1"]
    status, body = await call("PUT", "/_sim/faults", {"latency": 0.01, "error_rate": 0.5, "seed": 7})
    assert status == 200 and body["latency"] == 0.01 and body["error_rate"] == 0.5
    assert (await call("PUT", "/_sim/faults", {"error_rate": 2}))[0] == 400
    assert (await call("PUT", "/_sim/faults", {"nope": 1}))[0] == 400
    assert (await call("DELETE", "/_sim/faults"))[1]["error_rate"] == 0.0
    status, body = await call("PUT", "/_sim/credentials", {"user_password": "secret"})
    assert body == {
        "sender_id": False,
        "sender_password": False,
        "company_id": False,
        "user_id": False,
        "user_password": True,
    }
    status, body = await call("GET", "/_sim/stats")
    assert status == 200 and set(body) >= {
        "requests",
        "session_requests",
        "functions",
        "creates_applied",
        "duplicate_create_attempts",
        "max_in_flight",
        "faults",
        "auth_failures",
    }
    assert (await call("POST", "/_sim/reset"))[0] == 204
    assert intacct_sim.projects() == {} and set(intacct_sim.state.customers) == {"C1", "C2"}
    assert intacct_sim.state.credentials.user_password is None


async def test_expire_sessions_now(intacct_sim: IntacctSim, intacct_http: aiohttp.ClientSession) -> None:
    root = await post(intacct_http, intacct_sim, envelope("<getAPISession/>"))
    sid = root.findtext("operation/result/data/api/sessionid")
    async with intacct_http.put(intacct_sim.control_url("/_sim/faults"), json={"expire_sessions_now": True}) as r:
        assert r.status == 200
    root = await post(intacct_http, intacct_sim, envelope(create("J-1"), auth=f"<sessionid>{sid}</sessionid>"))
    assert root.findtext("operation/errormessage/error/description2") == "Invalid session"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_command_line(intacct_http: aiohttp.ClientSession, tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('{"customers": ["C1", {"CUSTOMERID": "C2"}], "projects": [{"PROJECTID": "P-1", "NAME": "p"}]}')
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.intacct",
        "--port",
        str(port),
        "--sender-id",
        "s",
        "--sender-password",
        "sp",
        "--seed-file",
        str(seed),
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                async with intacct_http.get(f"{url}/_sim/stats") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        async with intacct_http.post(f"{url}/ia/xml/xmlgw.phtml", data=envelope("<getAPISession/>")) as response:
            root = ET.fromstring(await response.read())
        assert root.findtext("operation/result/data/api/endpoint") == f"{url}/ia/xml/xmlgw.phtml"
        async with intacct_http.get(f"{url}/_sim/customers") as response:
            assert (await response.json())["count"] == 2
        async with intacct_http.post(
            f"{url}/ia/xml/xmlgw.phtml", data=envelope(sender="<senderid>x</senderid><password>sp</password>")
        ) as response:
            assert b"Incorrect Intacct XML Partner ID" in await response.read()
    finally:
        process.terminate()
        await process.wait()
