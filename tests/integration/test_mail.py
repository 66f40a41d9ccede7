"""The mail adapter against a real SMTP server (aiosmtpd on a free loopback port)."""

from __future__ import annotations

import csv
import email
import io
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from adapters.errors import ConnectionFailure, PermanentError, TransientError
from adapters.mail import Attachment, MailClient, MailConfig, MailMessage
from tests.acceptance.harness import free_port

pytestmark = pytest.mark.timeout(30)


class Inbox:
    """An aiosmtpd handler that keeps every message, or refuses recipients with `refuse`."""

    def __init__(self, refuse: str | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.encrypted: list[bool] = []  # per message: did it arrive over TLS
        self.refuse = refuse

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        self.encrypted.append(session.ssl is not None)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted"


def start_server(inbox: Inbox, port: int | None = None, **kwargs: Any) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    controller = start_server(box)
    try:
        yield box, controller.port
    finally:
        controller.stop()


def config(port: int, **changes: Any) -> MailConfig:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "sender": "sync@example.com",
                              "to": ("accounting@example.com", "controller@example.com"), "timeout": 5.0}
    values.update(changes)
    return MailConfig(**values)


MESSAGE = MailMessage(
    subject="[st-intacct-sync] Reconciliation 1234567: 2 exceptions",
    text="Plain text: Smith & Sons <HQ>\n",
    html="<p>HTML: Smith &amp; Sons &lt;HQ&gt;</p>\n",
    attachments=(Attachment("reconciliation-1234567-20261125T1600Z.csv",
                            "class,kind\nmissing_in_intacct,job\nname_mismatch,project\n"),),
)


def parts(message: EmailMessage) -> tuple[str, str, list[tuple[str | None, str]]]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    # SMTP carries CRLF line ends; compare the text.
    files = [(a.get_filename(), a.get_content().replace("\r\n", "\n")) for a in message.iter_attachments()]
    return (text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n"),  # type: ignore[union-attr]
            files)


async def test_message_arrives_with_text_html_and_csv(inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    result = await MailClient(config(port)).send(MESSAGE)
    assert result.refused == {} and "accepted" in result.response
    [message] = box.messages
    assert message["Subject"] == MESSAGE.subject and message["From"] == "sync@example.com"
    assert box.envelopes[0].rcpt_tos == ["accounting@example.com", "controller@example.com"]
    assert message.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in message.iter_parts()] == ["multipart/alternative", "text/csv"]
    text, html, files = parts(message)
    assert text == MESSAGE.text and html == MESSAGE.html
    [(name, content)] = files
    assert name == "reconciliation-1234567-20261125T1600Z.csv"
    assert list(csv.reader(io.StringIO(content))) == [["class", "kind"], ["missing_in_intacct", "job"],
                                                      ["name_mismatch", "project"]]


async def test_subject_cannot_inject_headers(inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    await MailClient(config(port)).send(MailMessage("Hello\r\nBcc: evil@example.com", "t", "<p>h</p>"))
    [message] = box.messages
    assert message["Subject"] == "Hello Bcc: evil@example.com" and message["Bcc"] is None


async def test_unreachable_server_is_transient() -> None:
    with pytest.raises(TransientError, match="unreachable"):
        await MailClient(config(free_port())).send(MESSAGE)


@pytest.mark.parametrize(("reply", "error"), [("550 5.1.1 No such user", PermanentError),
                                              ("451 4.3.0 Try again later", TransientError)])
async def test_refused_recipients_are_classified(reply: str, error: type[Exception]) -> None:
    controller = start_server(Inbox(refuse=reply))
    try:
        with pytest.raises(error, match=reply.split()[0]):
            await MailClient(config(controller.port)).send(MESSAGE)
    finally:
        controller.stop()


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"reports", b"mail-secret-1")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


async def test_login_refused_is_a_connection_failure_and_accepted_login_sends() -> None:
    box = Inbox()
    controller = start_server(box, authenticator=authenticator, auth_require_tls=False)
    try:
        with pytest.raises(ConnectionFailure, match="refused the login") as caught:
            await MailClient(config(controller.port, username="reports", password="wrong")).send(MESSAGE)
        assert "wrong" not in str(caught.value)
        await MailClient(config(controller.port, username="reports", password="mail-secret-1")).send(MESSAGE)
        assert len(box.messages) == 1
        assert "mail-secret-1" not in repr(config(1, password="mail-secret-1"))
    finally:
        controller.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


async def test_starttls_then_login(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    box = Inbox()
    controller = start_server(box, tls_context=server_tls, require_starttls=True, authenticator=authenticator,
                              auth_required=True)
    try:
        client_tls = ssl.create_default_context(cafile=str(cert))
        plain = config(controller.port, username="reports", password="mail-secret-1")
        with pytest.raises((PermanentError, TransientError, ConnectionFailure)):
            await MailClient(plain).send(MESSAGE)  # the server insists on STARTTLS first
        secure = config(controller.port, username="reports", password="mail-secret-1", starttls=True,
                        tls_context=client_tls)
        await MailClient(secure).send(MESSAGE)
        assert box.encrypted == [True]
    finally:
        controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_as_on_port_465(certificate: tuple[Path, Path]) -> None:
    """`tls: implicit` speaks TLS from the first byte (SMTPS); a plain client cannot talk to such a server."""
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    box = Inbox()
    # aiosmtpd counts only STARTTLS as TLS for AUTH; its implicit-TLS listener is encrypted all the same.
    controller = start_server(box, ssl_context=server_tls, authenticator=authenticator, auth_required=True,
                              auth_require_tls=False)
    try:
        client_tls = ssl.create_default_context(cafile=str(cert))
        with pytest.raises(TransientError):
            await MailClient(config(controller.port, tls="starttls", tls_context=client_tls,
                                    timeout=2.0)).send(MESSAGE)
        secure = config(controller.port, username="reports", password="mail-secret-1", tls="implicit",
                        tls_context=client_tls)
        await MailClient(secure).send(MESSAGE)
        assert len(box.messages) == 1  # (aiosmtpd's session.ssl tells STARTTLS only, not implicit TLS)
    finally:
        controller.stop()


async def test_tls_none_never_upgrades(certificate: tuple[Path, Path]) -> None:
    """`tls: none` stays plain even when the server offers STARTTLS (a relay the operator trusts)."""
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    box = Inbox()
    controller = start_server(box, tls_context=server_tls)
    try:
        await MailClient(config(controller.port, tls="none")).send(MESSAGE)
        assert box.encrypted == [False]
    finally:
        controller.stop()


async def test_credentials_never_travel_in_clear_off_loopback() -> None:
    """A password with `tls: none` to a host that is not loopback is refused before any connection."""
    remote = config(25, host="smtp.invalid", tls="none", username="reports", password="mail-secret-1")
    with pytest.raises(ConnectionFailure, match="without TLS") as caught:
        await MailClient(remote).send(MESSAGE)
    assert "mail-secret-1" not in str(caught.value)


async def test_automatic_reply_suppression_headers(inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    await MailClient(config(port)).send(MESSAGE)
    [message] = box.messages
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"


def test_tls_mode_spellings() -> None:
    assert config(1).tls_mode == "none"
    assert config(1, starttls=True).tls_mode == "starttls"  # the 0.1 spelling
    assert config(1, starttls=True, tls="implicit").tls_mode == "implicit"
    with pytest.raises(ValueError, match="tls must be one of"):
        _ = config(1, tls="ssl").tls_mode
