"""``python -m simulators.intacct --port N``: run the Intacct simulator alone."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from simulators.intacct.app import create_app
from simulators.intacct.gateway import GATEWAY_PATH
from simulators.intacct.rest_api import API_PREFIX
from simulators.intacct.rest_options import RestOptions
from simulators.intacct.state import IntacctSimOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.intacct", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    for name in ("sender-id", "sender-password", "company-id", "user-id", "user-password"):
        parser.add_argument(f"--{name}", help="enforce this credential (default: accept any non-empty value)")
    parser.add_argument("--client-id", help="REST: enforce this OAuth2 client id (default: accept any)")
    parser.add_argument("--client-secret", help="REST: enforce this OAuth2 client secret (default: accept any)")
    parser.add_argument("--ws-user", help="REST: enforce this Web Services user, user@company (default: any)")
    parser.add_argument("--token-ttl", type=float, default=21600.0, help="REST: access token lifetime, seconds")
    parser.add_argument("--max-concurrent", type=int, default=2, help="per-company request limit (0: none)")
    parser.add_argument("--concurrency-wait", type=float, default=30.0, help="seconds a request waits for a slot")
    parser.add_argument("--session-ttl", type=float, default=3600.0, help="sliding session lifetime, seconds")
    parser.add_argument("--session-max-age", type=float, default=None, help="absolute session lifetime, seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--latency-per-function", type=float, default=0.0, help="seconds added per function")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault random generator")
    seed = parser.add_mutually_exclusive_group()
    seed.add_argument("--seed-customers", default="", help="comma-separated CUSTOMERIDs to create")
    seed.add_argument("--seed-file", type=Path, help='JSON {"customers": [ids], "projects": [{...}]}')
    return parser


def rest_options_from_args(args: argparse.Namespace) -> RestOptions:
    """The REST side's options from the parsed command line."""
    return RestOptions(client_id=args.client_id, client_secret=args.client_secret, username=args.ws_user,
                       token_ttl=args.token_ttl)


def options_from_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, IntacctSimOptions]:
    """Parse the command line into simulator options."""
    args = _parser().parse_args(argv)
    customers: list[str] = [c.strip() for c in args.seed_customers.split(",") if c.strip()]
    projects: list[dict[str, str | None]] = []
    if args.seed_file is not None:
        try:
            seed = json.loads(args.seed_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"cannot read --seed-file {args.seed_file}: {exc}") from None
        customers = [str(c["CUSTOMERID"] if isinstance(c, dict) else c) for c in seed.get("customers", [])]
        projects = list(seed.get("projects", []))
    options = IntacctSimOptions(
        sender_id=args.sender_id,
        sender_password=args.sender_password,
        company_id=args.company_id,
        user_id=args.user_id,
        user_password=args.user_password,
        max_concurrent=args.max_concurrent or None,
        concurrency_wait=args.concurrency_wait,
        session_ttl=args.session_ttl,
        session_max_age=args.session_max_age,
        latency=args.latency,
        latency_per_function=args.latency_per_function,
        seed_customers=tuple(customers),
        seed_projects=tuple(projects),
        seed=args.seed,
    )
    return args, options


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted."""
    args, options = options_from_args(argv)
    print(f"Intacct simulator: gateway http://{args.host}:{args.port}{GATEWAY_PATH}, "
          f"REST http://{args.host}:{args.port}{API_PREFIX}", file=sys.stderr, flush=True)
    web.run_app(create_app(options, rest_options=rest_options_from_args(args)), host=args.host, port=args.port,
                print=None)


if __name__ == "__main__":
    main()
