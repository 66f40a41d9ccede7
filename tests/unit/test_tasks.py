"""daemon.tasks: one owner of the daemon's tasks, and `wait_first`."""

from __future__ import annotations

import asyncio
import time

from daemon.tasks import TaskSet, wait_first


async def test_wait_first_returns_on_the_first_and_cancels_the_rest() -> None:
    first, second = asyncio.Event(), asyncio.Event()
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    asyncio.get_running_loop().call_later(0.05, first.set)
    began = time.monotonic()
    await wait_first(*waits, timeout=5)
    assert time.monotonic() - began < 2
    await asyncio.sleep(0)
    assert waits[0].done() and not waits[0].cancelled()
    assert waits[1].cancelled()


async def test_wait_first_gives_up_after_the_timeout() -> None:
    never = asyncio.Event()
    wait = asyncio.ensure_future(never.wait())
    began = time.monotonic()
    await wait_first(wait, timeout=0.1)
    assert 0.05 <= time.monotonic() - began < 2
    await asyncio.sleep(0)
    assert wait.cancelled()


async def test_a_long_running_task_that_ends_fails_the_set() -> None:
    tasks = TaskSet()
    tasks.spawn("worker-0", asyncio.sleep(0))
    await asyncio.wait_for(tasks.failed.wait(), 2)
    assert tasks.failure == "task worker-0 ended unexpectedly"


async def test_a_task_meant_to_end_leaves_the_set_without_failing_it() -> None:
    tasks = TaskSet()
    task = tasks.spawn("reconcile-http-1", asyncio.sleep(0), ends=True)
    await task
    await asyncio.sleep(0)
    assert tasks.names("reconcile-") == [] and not tasks.failed.is_set()
    tasks.spawn("reconcile-http-1", asyncio.sleep(0), ends=True)  # the name is free again


async def test_stopping_the_set_cancels_tasks_meant_to_end() -> None:
    tasks = TaskSet()
    task = tasks.spawn("reconcile-http-1", asyncio.sleep(60), ends=True)
    await tasks.stop_all()
    assert task.cancelled() and not tasks.failed.is_set() and tasks.names("reconcile-") == []
