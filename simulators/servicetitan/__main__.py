"""``python -m simulators.servicetitan --port N``: run the simulator until interrupted."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from simulators.servicetitan.app import create_app
from simulators.servicetitan.seed import demo_seed, load_seed_file
from simulators.servicetitan.state import STATE, ServiceTitanSimOptions


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulators.servicetitan",
        description="ServiceTitan simulator: /connect/token, JPM exports and lists, CRM customers, /_sim/ controls.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-id", help="enforce this client id (default: accept any non-empty one)")
    p.add_argument("--client-secret", help="enforce this client secret")
    p.add_argument("--app-key", help="enforce this ST-App-Key")
    p.add_argument("--token-ttl", type=float, default=900.0, help="access token lifetime in seconds")
    p.add_argument("--export-page-size", type=int, default=500, help="rows per export page")
    p.add_argument(
        "--recent-changes-delay", type=float, default=900.0,
        help="seconds before a change shows in an export without includeRecentChanges=true",
    )  # fmt: skip
    p.add_argument("--rate-limit-per-second", type=float, help="per app and tenant call limit (off by default)")
    p.add_argument("--seed", choices=("demo", "none"), default="none", help="load demo data at start")
    p.add_argument("--seed-file", help="JSON file of customers, projects and jobs to load at start")
    p.add_argument("--tenant", type=int, default=1234567, help="tenant the seed data goes to")
    p.add_argument("--random-seed", type=int, help="seed of the fault randomness")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse the options, seed the data, serve until SIGINT/SIGTERM."""
    args = _parser().parse_args(argv)
    options = ServiceTitanSimOptions(
        client_id=args.client_id,
        client_secret=args.client_secret,
        app_key=args.app_key,
        token_ttl=args.token_ttl,
        export_page_size=args.export_page_size,
        recent_changes_delay=args.recent_changes_delay,
        seed=args.random_seed,
    )
    app = create_app(options)
    state = app[STATE]
    if args.rate_limit_per_second:
        state.set_faults({"rate_limit_per_second": args.rate_limit_per_second})
    if args.seed == "demo":
        demo_seed(state, args.tenant)
    if args.seed_file:
        try:
            load_seed_file(state, args.seed_file, args.tenant)
        except (OSError, ValueError) as exc:
            print(f"servicetitan simulator: cannot load {args.seed_file}: {exc}", file=sys.stderr)
            return 2
    print(
        f"ServiceTitan simulator: API base http://{args.host}:{args.port}, "
        f"token URL http://{args.host}:{args.port}/connect/token",
        flush=True,
    )
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
