"""Benchmark: how soon a ServiceTitan change exists in Intacct, against its target (README: "Development").

For 60 s, 5 new jobs a second appear in the ServiceTitan simulator; the time from each job's creation
to its PROJECT existing in the Intacct simulator (100 ms + 2 ms per function, 2 requests in flight)
is measured. The daemon runs at the shipped defaults (poll_interval and every other setting as the
loader defaults them), where the targets are p50 ≤ 1.5 s and p99 ≤ 3 s; with --poll-interval they
are p50 ≤ poll_interval/2 + 0.3 s, p99 ≤ poll_interval + 1 s. Meanwhile, twice a second a job is
created and immediately asked for with `POST /v1/ensure` (unknown to the daemon): target p99 ≤ 3
round trips + 50 ms. Afterwards the daemon idles for --idle seconds and the requests it sends to
ServiceTitan meanwhile are counted (target: at most 1 per second).

    python bench/latency.py [--seconds 60] [--rate 5] [--poll-interval SECONDS] [--idle 30]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime

from common import bench_stack, percentile

LATENCY, PER_FUNCTION, CONCURRENCY = 0.1, 0.002, 2
ROUND_TRIP = LATENCY + PER_FUNCTION  # one Intacct request of one function


async def run(seconds: float, rate: float, poll_interval: float | None, idle: float) -> dict[str, list[float]]:
    intacct_args = ["--latency", str(LATENCY), "--latency-per-function", str(PER_FUNCTION),
                    "--max-concurrent", str(CONCURRENCY)]
    async with bench_stack(intacct_args=intacct_args) as stack:
        config = stack.config(logging={"format": "json", "level": "warning"})
        # The shipped defaults: none of the harness's test-speed settings (poll, probe, backoff, lease).
        config["servicetitan"].pop("poll_interval")
        config["intacct"].pop("probe_interval")
        config["intacct"].pop("request_timeout")
        config.pop("sync")
        if poll_interval is not None:
            config["servicetitan"]["poll_interval"] = f"{poll_interval}s"
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
            while loop.time() < end + (poll_interval or 15) + 10 and (
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
        # Idle: nothing changes in ServiceTitan; count what the daemon still asks it.
        before = _api_requests(await stack.st.call("GET", "/_sim/stats"))
        started = loop.time()
        await asyncio.sleep(idle)
        idle_rate = (_api_requests(await stack.st.call("GET", "/_sim/stats")) - before) / (loop.time() - started)
        daemon.proc.stop()
    polls = sorted(r["at"] for r in requests if r["path"].endswith("/export/jobs"))
    latencies, waits = [], []
    for key, t in created.items():
        if key in seen:
            latencies.append(seen[key] - t)
            waits.append(next((p for p in polls if p >= t), seen[key]) - t)
    missing = [k for k in created if k not in seen]
    return {"latencies": latencies, "waits": waits, "ensure": ensure_times, "missing": [float(len(missing))],
            "ensure_failures": [float(len(ensure_failures))], "idle_rate": [idle_rate]}


def _api_requests(stats: dict[str, object]) -> int:
    """Requests the daemon sent to ServiceTitan (API and token), not the benchmark's /_sim/ calls."""
    counts = stats["requests"]
    assert isinstance(counts, dict)
    return sum(int(n) for route, n in counts.items() if not str(route).startswith("sim."))


def _epoch(stamp: str) -> float:
    """Both simulators stamp records with this machine's clock: ServiceTitan's createdOn (7 digits,
    Z) and Intacct's WHENCREATED, so their difference is the latency without any polling error."""
    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=5, help="new jobs per second")
    parser.add_argument("--poll-interval", type=float, default=None,
                        help="servicetitan.poll_interval (s); default: the shipped default")
    parser.add_argument("--idle", type=float, default=30, help="seconds of idling measured at the end")
    args = parser.parse_args()
    figures = asyncio.run(run(args.seconds, args.rate, args.poll_interval, args.idle))
    lat, ens = figures["latencies"], figures["ensure"]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    if args.poll_interval is None:
        from daemon.config.sections import DEFAULT_POLL_INTERVAL

        shown, (t50, t99) = f"{DEFAULT_POLL_INTERVAL.total_seconds():g} s (shipped default)", (1.5, 3.0)
    else:
        shown, (t50, t99) = f"{args.poll_interval:g} s", (args.poll_interval / 2 + 0.3, args.poll_interval + 1)
    e99, te = percentile(ens, 99), 3 * ROUND_TRIP + 0.05
    print(f"latency: {len(lat)} jobs, poll_interval {shown}; change → Intacct "
          f"p50 {p50:.2f} s (target ≤ {t50:.2f}, ratio {p50 / t50:.2f}), "
          f"p99 {p99:.2f} s (target ≤ {t99:.2f}, ratio {p99 / t99:.2f}), never synced: {int(figures['missing'][0])}")
    work = [lat_ - w for lat_, w in zip(lat, figures["waits"], strict=True)]
    print(f"  of which waiting for the next poll: p50 {percentile(figures['waits'], 50):.2f} s; "
          f"poll → Intacct: p50 {percentile(work, 50):.3f} s, p99 {percentile(work, 99):.3f} s")
    print(f"ensure (unknown job): {len(ens)} calls, p50 {percentile(ens, 50) * 1000:.0f} ms, "
          f"p99 {e99 * 1000:.0f} ms (target ≤ {te * 1000:.0f} ms = 3 round trips + 50 ms, ratio {e99 / te:.2f}), "
          f"non-200 answers: {int(figures['ensure_failures'][0])}")
    idle = figures["idle_rate"][0]
    print(f"idle: {idle:.2f} requests/s to ServiceTitan over {args.idle:g} s (target ≤ 1, ratio {idle:.2f})")


if __name__ == "__main__":
    main()
