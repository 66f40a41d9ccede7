"""Benchmark: records per second through the whole daemon, against its target (README: "Development").

10,000 new jobs under 500 projects appear in the ServiceTitan simulator; the daemon (a subprocess,
real PostgreSQL) follows the feed and creates them in the Intacct simulator, whose answers take
100 ms + 2 ms per function with at most 2 requests of the company in flight. The bound is
2 × f / (0.1 + 0.002 × f) records/s for f functions per request; the target is 85 % of it, sustained,
with no duplicate and no loss.

With `--intacct-api rest` the same run is made over the XML gateway and then over the REST API, under
the same latency model (the REST simulator charges the same 100 ms per request and 2 ms per record
of a batch), and both figures are printed, each as a ratio of its own bound: f is the functions per
XML request (`--functions`) and the records per REST batch (`--batch`, at most 500).

    python bench/throughput.py [--jobs 10000] [--projects 500] [--functions 50] [--intacct-api rest [--batch 500]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from common import bench_stack, wait_until

LATENCY, PER_FUNCTION, CONCURRENCY = 0.1, 0.002, 2


def _ids(created: dict[str, int]) -> list[int]:
    """The ids the simulator's bulk call assigned (consecutive)."""
    return list(range(created["first_id"], created["last_id"] + 1))


def bound(functions: int) -> float:
    return CONCURRENCY * functions / (LATENCY + PER_FUNCTION * functions)


async def run(jobs: int, projects: int, functions: int, api: str = "xml") -> dict[str, float]:
    intacct_args = ["--latency", str(LATENCY), "--latency-per-function", str(PER_FUNCTION),
                    "--max-concurrent", str(CONCURRENCY)]
    async with bench_stack(intacct_args=intacct_args, intacct_api=api) as stack:
        config = stack.config(
            intacct={"max_concurrent_requests": CONCURRENCY, "max_functions_per_request": functions,
                     "request_timeout": "60s"},
            sync={"workers": 4, "lease": "60s"},
            logging={"format": "json", "level": "warning"},
        )
        daemon = await stack.start_daemon(config)
        total = jobs + projects
        made = await stack.st.bulk({"customers": [{"name": f"Customer {i}"} for i in range(max(1, projects // 5))]})
        customer_ids = _ids(made["customers"])
        made = await stack.st.bulk({"projects": [
            {"name": f"Project {p}", "customerId": customer_ids[p % len(customer_ids)]} for p in range(projects)]})
        project_ids = _ids(made["projects"])
        await stack.st.bulk({"jobs": [
            {"customerId": customer_ids[j % len(customer_ids)], "projectId": project_ids[j % len(project_ids)]}
            for j in range(jobs)]})
        t_created = time.monotonic()
        samples: list[tuple[float, int]] = []

        async def all_synced() -> bool:
            queue = (await daemon.status())["queue"]
            samples.append((time.monotonic(), queue["synced"]))
            return queue["synced"] >= total

        await wait_until(all_synced, 600, f"{total} synced", interval=0.25)
        t_done = time.monotonic()
        listing = await stack.ia.call("GET", "/_sim/projects")
        ids = [p["PROJECTID"] for p in listing["projects"]]
        stats = await stack.ia.stats()
        daemon.proc.stop()

    def time_at(n: int) -> float:
        return next(t for t, synced in samples if synced >= n)

    t10, t90 = time_at(int(total * 0.1)), time_at(int(total * 0.9))
    return {
        "records": total,
        "overall_rate": total / (t_done - t_created),
        "sustained_rate": (int(total * 0.9) - int(total * 0.1)) / (t90 - t10),
        "elapsed_s": t_done - t_created,
        "intacct_projects": len(ids),
        "duplicates": len(ids) - len(set(ids)),
        "lost": total - len(set(ids)),
        "intacct_requests": stats["requests"],
        "max_in_flight": stats["max_in_flight"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--functions", type=int, default=50, help="intacct.max_functions_per_request")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--intacct-api", choices=("xml", "rest"), default="xml",
                        help="rest: measure the XML gateway and then the REST API, and print both")
    parser.add_argument("--batch", type=int, default=500, help="records per REST batch (intacct.max_functions_"
                        "per_request with intacct.api: rest; Sage allows up to 500)")
    args = parser.parse_args()
    runs = [("xml", args.functions)] + ([("rest", args.batch)] if args.intacct_api == "rest" else [])
    for api, per_request in runs:
        figures = asyncio.run(run(args.jobs, args.projects, per_request, api))
        b = bound(per_request)
        print(f"[{api}] throughput: {figures['records']} records in {figures['elapsed_s']:.1f} s; sustained "
              f"{figures['sustained_rate']:.0f} records/s (10%→90%), overall {figures['overall_rate']:.0f}/s")
        print(f"[{api}] bound 2×{per_request}/(0.1+0.002×{per_request}) = {b:.0f} records/s; "
              f"sustained ratio {figures['sustained_rate'] / b:.2f} (target ≥ 0.85), "
              f"overall ratio {figures['overall_rate'] / b:.2f}")
        print(f"[{api}] Intacct: {figures['intacct_projects']} projects, duplicates {figures['duplicates']}, lost "
              f"{figures['lost']}, {figures['intacct_requests']} requests, max in flight {figures['max_in_flight']}")
        if args.json:
            print(json.dumps({**figures, "api": api, "records_per_request": per_request, "bound": b}))


if __name__ == "__main__":
    main()
