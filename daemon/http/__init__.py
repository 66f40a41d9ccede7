"""The operators' HTTP endpoints, and the status document as text (for the CLI and the demo)."""

from __future__ import annotations

from daemon.http.app import create_app
from daemon.http.status import render_status

__all__ = ["create_app", "render_status"]
