"""Mailing a reconciliation report: when, to whom, and retried with backoff.

Sent as daemon/reconcile/cadence.py decides (report.send, report.daily_at); never with `--no-email`
or without `report.email`. What a sent report listed is remembered in the database.
Transient failures (server down, timeouts, 4xx) are retried with exponential
backoff; refused credentials and permanent refusals are not. Whatever happens is logged and stored
on the run (`report_sent_at` or `report_error`): a mail failure never fails the run or stops the
daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.errors import AdapterError, TransientError
from adapters.mail import Attachment, MailClient, MailConfig, MailMessage
from daemon import logs
from daemon.config import Config
from daemon.metrics import Metrics
from daemon.reconcile.cadence import decide, fingerprint
from daemon.reconcile.report import Report
from daemon.store import Finding, ReportSent, Store

log = logs.get("st_intacct_sync.reconcile")


@dataclass(frozen=True)
class MailPolicy:
    """How often a report is tried, and the first wait (doubled after each attempt)."""

    attempts: int
    first_delay: float


DAEMON_MAIL = MailPolicy(attempts=5, first_delay=4.0)  # waits 4 + 8 + 16 + 32 s: about a minute
CLI_MAIL = MailPolicy(attempts=3, first_delay=2.0)  # someone is waiting at the terminal


def mail_config(config: Config) -> MailConfig | None:
    """The mail adapter's configuration, from `report.email` (None: no email)."""
    email = config.report.email
    if email is None:
        return None
    return MailConfig(host=email.smtp_host, port=email.smtp_port, sender=email.sender, to=email.to,
                      tls=email.tls, username=email.username,
                      password=email.password.reveal() if email.password else None)


class ReportMailer:
    """Delivers rendered reports and records the outcome on their run."""

    def __init__(self, store: Store, redactor: logs.Redactor, policy: MailPolicy,
                 mailer: Callable[[MailConfig], MailClient] = MailClient, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.redactor = redactor
        self.policy = policy
        self.mailer = mailer

    async def deliver(self, run_id: int, rendered: Report, findings: list[Finding], *, email: bool,
                      config: Config) -> str:
        """Send the report if it should be (report.send, report.daily_at); store and return what happened."""
        settings = mail_config(config)
        reason = None
        decision = None
        if not email:
            reason = "not sent: --no-email"
        elif settings is None:
            reason = "not sent: report.email is not configured"
        else:
            report = config.report
            decision = decide(report.send, report.daily_at, report.zone, findings, await self.store.runs.report_sent(),
                              datetime.now(UTC))
            if not decision.send:
                reason = f"not sent: {decision.reason}"
        if reason is not None or settings is None or decision is None:
            log.info("reconcile_report_not_sent", run=run_id, reason=reason)
            await self.store.runs.set_report(run_id, None, reason)
            return reason or "not sent"
        message = MailMessage(rendered.subject, rendered.text, rendered.html,
                              (Attachment(rendered.csv_name, rendered.csv_text),))
        client = self.mailer(settings)
        error: AdapterError | None = None
        for attempt in range(1, self.policy.attempts + 1):
            try:
                result = await client.send(message)
            except TransientError as exc:
                error = exc
                if attempt < self.policy.attempts:
                    delay = self.policy.first_delay * 2 ** (attempt - 1)
                    log.warning("reconcile_report_retry", run=run_id, attempt=attempt, wait_s=delay,
                                error=self.redactor.redact(exc.message))
                    await asyncio.sleep(delay)
                continue
            except AdapterError as exc:
                error = exc  # credentials or a permanent refusal: trying again changes nothing
                break
            if result.refused:
                log.warning("reconcile_report_recipients_refused", run=run_id, refused=result.refused)
            sent_at = datetime.now(UTC)
            await self.store.runs.set_report(run_id, sent_at, None)
            await self.store.runs.save_report_sent(ReportSent(
                fingerprint(findings), len(findings), run_id, sent_at,
                sent_at.astimezone(config.report.zone).date() if decision.digest else None))
            if self.metrics is not None:
                self.metrics.emails.labels(result="sent").inc()
            log.info("reconcile_report_sent", run=run_id, to=list(settings.to), attempts=attempt,
                     because=decision.reason)
            return f"sent to {', '.join(settings.to)}"
        text = self.redactor.redact(error.message if error else "unknown error")
        if self.metrics is not None:
            self.metrics.emails.labels(result="failed").inc()
        log.error("reconcile_report_failed", run=run_id, error=text,
                  error_class=error.error_class if error else None)
        await self.store.runs.set_report(run_id, None, text)
        return f"not sent: {text}"
