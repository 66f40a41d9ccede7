"""`st-intacct-sync demo`: the daemon against both simulators (the only importer of `simulators`)."""

from __future__ import annotations

from daemon.demo.stack import run

__all__ = ["run"]
