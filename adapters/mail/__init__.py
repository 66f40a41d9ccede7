"""SMTP adapter: the accountants' reconciliation reports as multipart email with a CSV attached."""

from adapters.mail.client import Attachment, MailClient, MailConfig, MailMessage, SendResult, classify

__all__ = ["Attachment", "MailClient", "MailConfig", "MailMessage", "SendResult", "classify"]
