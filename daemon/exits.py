"""The exit codes of every `st-intacct-sync` command (the README's command table)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the command (or the daemon) could not do its job: the message or the log says why
EXIT_BAD_INPUT = 2  # the configuration or the arguments are wrong; also argparse's own code for usage errors
EXIT_EXCEPTIONS_REMAIN = 3  # `reconcile`: exceptions nothing was queued for, a person must look
