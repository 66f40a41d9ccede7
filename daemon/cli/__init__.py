"""The `st-intacct-sync` command line: the argument parser and the commands."""

from __future__ import annotations

from daemon.cli.parser import main

__all__ = ["main"]
