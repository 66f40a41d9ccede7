"""Reconciliation: the service that schedules runs, one run, its indexes and classes, the report and its mail."""

from __future__ import annotations

from daemon.reconcile.mail import CLI_MAIL
from daemon.reconcile.report import render_text
from daemon.reconcile.service import ReconcileService

__all__ = ["CLI_MAIL", "ReconcileService", "render_text"]
