"""Benchmark: how soon a ServiceTitan change exists in Intacct (DESIGN.md §13, bench/latency.py).

For 60 s, 5 new jobs a second appear in the ServiceTitan simulator; the time from each job's creation
to its PROJECT existing in the Intacct simulator (100 ms + 2 ms per function, 2 requests in flight)
is measured. Targets: p50 ≤ poll_interval/2 + 0.3 s, p99 ≤ poll_interval + 1 s. Meanwhile, twice a
second a job is created and immediately asked for with `POST /v1/ensure` (unknown to the daemon):
target p99 ≤ 3 round trips + 50 ms.

    python bench/latency.py [--seconds 60] [--rate 5] [--poll-interval 15]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime

from common import bench_stack, percentile

LATENCY, PER_FUNCTION, CONCURRENCY = 0.1, 0.002, 2
ROUND_TRIP = LATENCY + PER_FUNCTION  # one Intacct request of one function


async def run(seconds: float, rate: float, poll_interval: float) -> dict[str, list[float]]:
    intacct_args = ["--latency", str(LATENCY), "--latency-per-function", str(PER_FUNCTION),
                    "--max-concurrent", str(CONCURRENCY)]
    async with bench_stack(intacct_args=intacct_args) as stack:
        config = stack.config(
            servicetitan={"poll_interval": f"{poll_interval}s"},
            intacct={"max_concurrent_requests": CONCURRENCY, "request_timeout": "30s"},
            logging={"format": "json", "level": "warning"},
        )
        daemon = await stack.start_daemon(config)
        customer = await stack.st.customer("Latency Customer")
        project = await stack.st.project(customer["id"], "Latency Project")
        created: dict[str, float] = {}
        seen: dict[str, float] = {}
        ensure_times: list[float] = []
        ensure_failures: list[str] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds

        async def feed() -> None:
            start, n = loop.time(), 0
            while loop.time() < end:
                job = await stack.st.job(customer["id"], project["id"])
                created[f"J-{job['jobNumber']}"] = _epoch(job["createdOn"])
                n += 1
                await asyncio.sleep(max(0.0, start + n / rate - loop.time()))

        async def watch() -> None:
            while loop.time() < end + poll_interval + 10 and (
                    loop.time() < end or any(k not in seen for k in created)):
                listing = await stack.ia.call("GET", "/_sim/projects?prefix=J-")
                for p in listing["projects"]:
                    seen.setdefault(p["PROJECTID"], _epoch(p["WHENCREATED"]))
                await asyncio.sleep(0.2)

        async def gate() -> None:
            while loop.time() < end:
                job = await stack.st.job(customer["id"], project["id"])
                started = time.monotonic()
                status, body = await daemon.ensure(jobs=[job["id"]], timeout_s=10)
                ensure_times.append(time.monotonic() - started)
                if status != 200:
                    ensure_failures.append(f"{status}: {body}")
                await asyncio.sleep(0.5)

        await asyncio.gather(feed(), watch(), gate())
        requests = await stack.st.call("GET", "/_sim/requests?limit=1000")
        daemon.proc.stop()
    polls = sorted(r["at"] for r in requests if r["path"].endswith("/export/jobs"))
    latencies, waits = [], []
    for key, t in created.items():
        if key in seen:
            latencies.append(seen[key] - t)
            waits.append(next((p for p in polls if p >= t), seen[key]) - t)
    missing = [k for k in created if k not in seen]
    return {"latencies": latencies, "waits": waits, "ensure": ensure_times, "missing": [float(len(missing))],
            "ensure_failures": [float(len(ensure_failures))]}


def _epoch(stamp: str) -> float:
    """Both simulators stamp records with this machine's clock: ServiceTitan's createdOn (7 digits,
    Z) and Intacct's WHENCREATED, so their difference is the latency without any polling error."""
    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=5, help="new jobs per second")
    parser.add_argument("--poll-interval", type=float, default=15, help="servicetitan.poll_interval (s)")
    args = parser.parse_args()
    figures = asyncio.run(run(args.seconds, args.rate, args.poll_interval))
    lat, ens = figures["latencies"], figures["ensure"]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    t50, t99 = args.poll_interval / 2 + 0.3, args.poll_interval + 1
    e99, te = percentile(ens, 99), 3 * ROUND_TRIP + 0.05
    print(f"latency: {len(lat)} jobs, poll_interval {args.poll_interval:g} s; change → Intacct "
          f"p50 {p50:.2f} s (target ≤ {t50:.2f}, ratio {p50 / t50:.2f}), "
          f"p99 {p99:.2f} s (target ≤ {t99:.2f}, ratio {p99 / t99:.2f}), never synced: {int(figures['missing'][0])}")
    work = [lat_ - w for lat_, w in zip(lat, figures["waits"], strict=True)]
    print(f"  of which waiting for the next poll: p50 {percentile(figures['waits'], 50):.2f} s; "
          f"poll → Intacct: p50 {percentile(work, 50):.3f} s, p99 {percentile(work, 99):.3f} s")
    print(f"ensure (unknown job): {len(ens)} calls, p50 {percentile(ens, 50) * 1000:.0f} ms, "
          f"p99 {e99 * 1000:.0f} ms (target ≤ {te * 1000:.0f} ms = 3 round trips + 50 ms, ratio {e99 / te:.2f}), "
          f"non-200 answers: {int(figures['ensure_failures'][0])}")


if __name__ == "__main__":
    main()
