"""SMTP adapter: the accountants' reconciliation reports as multipart email with a CSV attached."""

from adapters.mail.client import (
    TLS_MODES,
    Attachment,
    MailClient,
    MailConfig,
    MailMessage,
    SendResult,
    classify,
    is_loopback,
)

__all__ = ["TLS_MODES", "Attachment", "MailClient", "MailConfig", "MailMessage", "SendResult", "classify",
           "is_loopback"]
