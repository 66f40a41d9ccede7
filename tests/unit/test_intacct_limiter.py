"""The per-company request cap lets priority requests (export gating) go first."""

from __future__ import annotations

import asyncio

import pytest

from adapters.intacct.limiter import PrioritySemaphore


async def test_never_more_than_the_limit_and_priority_first() -> None:
    sem = PrioritySemaphore(2)
    order: list[str] = []
    running = 0
    peak = 0
    gate = asyncio.Event()

    async def worker(name: str, priority: bool) -> None:
        nonlocal running, peak
        async with sem.slot(priority):
            running += 1
            peak = max(peak, running)
            order.append(name)
            await gate.wait()
            running -= 1

    first = [asyncio.create_task(worker(f"bg{i}", False)) for i in range(2)]
    await asyncio.sleep(0)
    queued = [asyncio.create_task(worker(f"bg{i}", False)) for i in range(2, 5)]
    await asyncio.sleep(0)
    urgent = asyncio.create_task(worker("urgent", True))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*first, *queued, urgent)
    assert peak == 2
    # The priority waiter came last but got the first slot that freed up.
    assert order[:3] == ["bg0", "bg1", "urgent"]
    assert sem.held == 0 and sem.waiting == 0


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    sem = PrioritySemaphore(1)
    await sem.acquire()
    waiter = asyncio.create_task(sem.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    sem.release()
    assert sem.held == 0
    await asyncio.wait_for(sem.acquire(), 1)  # the slot is free again
    assert sem.held == 1


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PrioritySemaphore(0)
