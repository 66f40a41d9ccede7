"""An SMTP client for the accountants' reports: one message per call, errors in the shared classes.

The message is ``multipart/mixed``: a ``multipart/alternative`` (plain text, then HTML) followed by
the attachments, built with ``email.message.EmailMessage`` so that every header and part is encoded
by the standard library (names with non-ASCII text, long lines, quoting). Classification, where the
error is first caught:

* the server refused our credentials, or lacks a feature the configuration asks for (STARTTLS,
  AUTH): ``ConnectionFailure``: retrying will not help until the configuration changes;
* unreachable, disconnected, timed out, or a 4xx reply ("try again later"): ``TransientError``;
* a 5xx reply to the sender, the recipients or the data: ``PermanentError``.

Error messages carry the server's reply code and text, never the password.
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib

from adapters.errors import AdapterError, ConnectionFailure, PermanentError, TransientError
from adapters.transport import is_loopback

__all__ = ["TLS_MODES", "Attachment", "MailClient", "MailConfig", "MailMessage", "SendResult", "classify",
           "is_loopback"]

# starttls: plain connection upgraded by STARTTLS (port 587, or 25); implicit: TLS from the first byte
# (port 465, "SMTPS"); none: no encryption (a relay on loopback or a trusted network).
TLS_MODES = ("starttls", "implicit", "none")
# Headers of every automatic message (RFC 3834, and Exchange's own): no out-of-office or other
# automatic reply comes back to the sender.
AUTOMATIC_HEADERS = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}


@dataclass(frozen=True)
class MailConfig:
    """Where and how to send; ``repr`` masks the password."""

    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    starttls: bool = False  # the 0.1 spelling of tls="starttls"; `tls` wins when given
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    # Only for tests against a local server with a self-signed certificate.
    tls_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    tls: str | None = None  # one of TLS_MODES

    @property
    def tls_mode(self) -> str:
        mode = self.tls or ("starttls" if self.starttls else "none")
        if mode not in TLS_MODES:
            raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}, got {mode!r}")
        return mode


@dataclass(frozen=True)
class Attachment:
    """A file attached to the message; text is sent as UTF-8 with its charset named."""

    filename: str
    content: str | bytes
    maintype: str = "text"
    subtype: str = "csv"


@dataclass(frozen=True)
class MailMessage:
    """What to send: a subject, the same content as text and HTML, and attachments."""

    subject: str
    text: str
    html: str
    attachments: Sequence[Attachment] = ()


@dataclass(frozen=True)
class SendResult:
    """The server's acceptance; ``refused`` lists recipients refused while others were accepted."""

    response: str
    refused: dict[str, str]


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    message = " ".join(str(exc.message).split())[:300]
    return f"{exc.code} {message}".strip()


def classify(exc: Exception, where: str) -> AdapterError:
    """The adapter error class of an aiosmtplib (or socket) failure."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        if 400 <= exc.code < 500:
            return TransientError(f"SMTP server {where} deferred the login: {_reply(exc)}", status=exc.code)
        return ConnectionFailure(f"SMTP server {where} refused the login: {_reply(exc)}", status=exc.code)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return ConnectionFailure(f"SMTP server {where} does not support what the configuration asks: {exc}")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.recipient}: {_reply(r)}" for r in exc.recipients)[:500]
        if any(400 <= c < 500 for c in codes):
            return TransientError(f"SMTP server {where} deferred every recipient: {text}")
        return PermanentError(f"SMTP server {where} refused every recipient: {text}")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(exc, aiosmtplib.SMTPConnectError):
        if 400 <= exc.code < 500:
            return TransientError(f"SMTP server {where} answered {_reply(exc)}", status=exc.code)
        if exc.code >= 500:
            return PermanentError(f"SMTP server {where} refused the message: {_reply(exc)}", status=exc.code)
        return TransientError(f"SMTP server {where} answered unexpectedly: {_reply(exc)}", status=exc.code)
    if isinstance(exc, TimeoutError):
        return TransientError(f"SMTP server {where} did not answer in time")
    if type(exc) is aiosmtplib.SMTPException:
        # aiosmtplib's plain SMTPException: a feature we need is not offered (AUTH without TLS,
        # STARTTLS): the configuration and the server disagree, and retrying will not change that.
        return ConnectionFailure(f"SMTP server {where} cannot do what the configuration asks: {str(exc)[:200]}")
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        return TransientError(f"SMTP server {where} is unreachable: {type(exc).__name__}: {str(exc)[:200]}")
    return TransientError(f"SMTP send to {where} failed: {type(exc).__name__}")


class MailClient:
    """Sends one message per call over a fresh SMTP connection (reports are rare)."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def build(self, message: MailMessage) -> EmailMessage:
        """The MIME message: text and HTML alternatives, then the attachments."""
        config = self.config
        msg = EmailMessage()
        msg["Subject"] = " ".join(message.subject.split())  # no header injection through a newline
        msg["From"] = config.sender
        msg["To"] = ", ".join(config.to)
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = email.utils.make_msgid(domain=config.sender.rpartition("@")[2] or None)
        for name, value in AUTOMATIC_HEADERS.items():
            msg[name] = value
        msg.set_content(message.text)
        msg.add_alternative(message.html, subtype="html")
        for attachment in message.attachments:
            if isinstance(attachment.content, str):
                msg.add_attachment(attachment.content, subtype=attachment.subtype, filename=attachment.filename)
            else:
                msg.add_attachment(attachment.content, maintype=attachment.maintype, subtype=attachment.subtype,
                                   filename=attachment.filename)
        return msg

    async def send(self, message: MailMessage) -> SendResult:
        """Send `message` to every configured recipient; raises the adapter error classes."""
        config = self.config
        mode = config.tls_mode
        login = config.username is not None and config.password is not None
        if login and mode == "none" and not is_loopback(config.host):
            # The configuration refuses this too; checked again here because a password sent in clear
            # over the network cannot be taken back.
            raise ConnectionFailure(f"SMTP server {self.where}: refusing to send credentials without TLS "
                                    "to a host that is not loopback (set report.email.tls)")
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            timeout=config.timeout,
            use_tls=mode == "implicit",
            # STARTTLS only when configured: an opportunistic upgrade against a server with a
            # certificate we cannot verify would fail a delivery the operator asked to be plain.
            start_tls=mode == "starttls",
            tls_context=config.tls_context,
        )
        mime = self.build(message)
        try:
            async with smtp:
                if login:
                    assert config.username is not None and config.password is not None
                    await smtp.login(config.username, config.password)
                refused, response = await smtp.send_message(mime, sender=config.sender, recipients=list(config.to))
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise classify(exc, self.where) from None
        return SendResult(response, {rcpt: f"{r.code} {r.message}" for rcpt, r in refused.items()})
