"""The `st-intacct-sync` command line: one table of commands, each a function of its args."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from daemon.cli import commands
from daemon.config import ConfigError, load_config
from daemon.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from daemon.version import VERSION


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line, how it declares its options and what it runs."""

    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


def check_config(args: argparse.Namespace) -> int:
    """Validate the file, print the effective configuration with secrets masked."""
    path = Path(args.config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        # load_config turns these into ConfigError; kept as a net so that no input ever shows a traceback.
        print(f"{path}: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(yaml.safe_dump(config.public_dict(), sort_keys=False, allow_unicode=True))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"config OK: {path}" + (f" ({len(config.warnings)} warning(s) on stderr)" if config.warnings else ""))
    return EXIT_OK


def _not_implemented(args: argparse.Namespace) -> int:
    print(f"st-intacct-sync {args.command}: not implemented yet", file=sys.stderr)
    return EXIT_FAILED


def _sync_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", type=int, metavar="ID", help="ServiceTitan job id")
    which.add_argument("--project", type=int, metavar="ID", help="ServiceTitan project id")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="give up after (default 60)")


def _backfill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", required=True, metavar="YYYY-MM-DD", help="records modified since this date")
    parser.add_argument("--kind", choices=("job", "project"), help="only jobs or only projects")


def _retry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--failed", action="store_true", help="every failed record")
    parser.add_argument("--job", type=int, action="append", metavar="ID", help="ServiceTitan job id")
    parser.add_argument("--project", type=int, action="append", metavar="ID", help="ServiceTitan project id")


def _reconcile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-email", action="store_true", help="do not email the report")
    parser.add_argument("--no-repair", action="store_true", help="report drift without enqueuing repairs")


def _check(args: argparse.Namespace) -> int:
    # Imported on use, like the demo: only this command needs the mail adapter without the daemon.
    from daemon.cli import check

    try:
        config, _ = commands.load(args)  # what it prints passes the redactor from here on
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    names = [name for name in check.CHECKS if getattr(args, name)] or list(check.CHECKS)
    return check.run_checks(config, names, print)


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    from daemon.cli import check

    check.arguments(parser)


def _demo(args: argparse.Namespace) -> int:
    # Imported on use: the demo pulls in both simulators, which no other command needs.
    from daemon.demo import stack as demo

    return demo.run(args)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="HTTP address")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directory (log, database)")
    parser.add_argument("--intacct-api", choices=("xml", "rest"), default="xml",
                        help="which Intacct API the daemon speaks to the simulator (default: xml)")


COMMANDS: dict[str, Command] = {
    "run": Command("run the daemon in the foreground", commands.run),
    "check-config": Command("validate the configuration and print it with secrets masked", check_config),
    "migrate": Command("apply database migrations", commands.migrate),
    "status": Command("print the running daemon's status", commands.status),
    "sync": Command("sync one record now and print its final state", commands.sync, _sync_arguments),
    "backfill": Command("enqueue ServiceTitan records modified since a date", commands.backfill, _backfill_arguments),
    "retry": Command("move failed records back to pending", commands.retry, _retry_arguments),
    "reconcile": Command("run one reconciliation now and print the summary; exit 3 when exceptions remain (failed, "
                         "blocked, orphans, drift not queued for repair)", commands.reconcile, _reconcile_arguments),
    "check": Command("check the mail server, Intacct and ServiceTitan with this configuration (all three unless "
                     "some are named); exit 0 all passed, 1 one failed, 2 invalid configuration", _check,
                     _check_arguments),
    "demo": Command("run the daemon against the simulators with sample data", _demo, _demo_arguments),
}


def build_parser(environ: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with every command of COMMANDS."""
    env = os.environ if environ is None else environ
    default_config = env.get("ST_INTACCT_SYNC_CONFIG") or "./config.yaml"
    config_help = f"configuration file (default: $ST_INTACCT_SYNC_CONFIG or ./config.yaml; now {default_config})"
    parser = argparse.ArgumentParser(
        prog="st-intacct-sync", description="Keeps Sage Intacct projects ahead of ServiceTitan exports."
    )
    parser.add_argument("--config", metavar="PATH", default=default_config, help=config_help)
    parser.add_argument("--version", action="version", version=f"st-intacct-sync {VERSION}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        # Also accepted after the command; SUPPRESS keeps the sub-parser from overwriting a value
        # given before the command with a default of its own.
        sub.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=config_help)
        if command.arguments is not None:
            command.arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
