"""Benchmark: the same jobs synced one request per record, sequentially, as a simple script would.

The script lists the jobs from the ServiceTitan simulator and sends one Intacct create per job,
waiting for each answer, against the same Intacct simulator settings as bench/throughput.py (100 ms +
2 ms per function, 2 requests in flight). At ~10 records/s the full 10,000 would take ~17 minutes,
so it measures a sample (default 300) and reports the rate; then it runs the daemon on the full
workload (or takes `--daemon-rate`) and prints the ratio daemon/naive.

    python bench/naive.py [--sample 300] [--jobs 10000] [--projects 500] [--daemon-rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
from common import bench_stack

from adapters.intacct import CreateProject, IntacctClient, IntacctCredentials, Outcome
from adapters.servicetitan import ServiceTitanClient, ServiceTitanCredentials
from tests.acceptance.harness import INTACCT_CREDS, ST_CREDS, TENANT

LATENCY, PER_FUNCTION, CONCURRENCY = 0.1, 0.002, 2


async def naive(sample: int) -> float:
    intacct_args = ["--latency", str(LATENCY), "--latency-per-function", str(PER_FUNCTION),
                    "--max-concurrent", str(CONCURRENCY)]
    async with bench_stack(intacct_args=intacct_args) as stack:
        made = await stack.st.bulk({"customers": [{"name": "Naive Customer"}]})
        customer = made["customers"]["first_id"]
        await stack.st.bulk({"jobs": [{"customerId": customer} for _ in range(sample)]})
        async with aiohttp.ClientSession() as http:
            st = ServiceTitanClient(http, ServiceTitanCredentials(
                api_base_url=stack.st.base, auth_url=stack.st.base + "/connect/token", tenant_id=TENANT, **ST_CREDS))
            ia = IntacctClient(http, IntacctCredentials(
                endpoint_url=stack.ia.base + "/ia/xml/xmlgw.phtml", **INTACCT_CREDS))
            started = time.monotonic()
            done = 0
            async for page in st.iter_jobs(page_size=5000):
                for job in page:
                    [result] = await ia.execute([CreateProject(f"job-{job.id}", {
                        "PROJECTID": f"J-{job.job_number}", "NAME": f"Job {job.job_number}",
                        "PROJECTCATEGORY": "Contract", "STATUS": "active"})])
                    done += result.outcome is Outcome.SUCCESS
            elapsed = time.monotonic() - started
        if done != sample or await stack.ia.project_count() != sample:
            raise SystemExit(f"naive run lost records: {done} of {sample}")
    return sample / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=300, help="jobs the naive script syncs")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs for the daemon's run")
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--daemon-rate", type=float, help="records/s of the daemon (skip its run)")
    args = parser.parse_args()
    rate = asyncio.run(naive(args.sample))
    print(f"naive: {args.sample} jobs one request each, sequentially: {rate:.1f} records/s "
          f"(10,000 would take {10_000 / rate / 60:.0f} min)")
    daemon_rate = args.daemon_rate
    if daemon_rate is None:
        from throughput import run as throughput

        figures = asyncio.run(throughput(args.jobs, args.projects, 50))
        daemon_rate = figures["overall_rate"]
        print(f"daemon: {figures['records']} records in {figures['elapsed_s']:.1f} s = {daemon_rate:.0f} records/s "
              f"(duplicates {figures['duplicates']}, lost {figures['lost']})")
    print(f"ratio daemon/naive: {daemon_rate / rate:.0f}×")


if __name__ == "__main__":
    main()
