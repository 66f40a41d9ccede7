"""Named tasks under one owner, and one way to wait for the first of several things.

A long-running task that dies stops the daemon, loudly; a task that is meant to end (a reconciliation
started over HTTP) is owned the same way, so that shutdown cancels it with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine
from typing import Any

from daemon import logs

log = logs.get("st_intacct_sync.tasks")


class TaskSet:
    """Owns long-running tasks; `failed` is set when one ends without being asked to."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self._stopping: set[str] = set()
        self._ending: set[str] = set()

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any], *, ends: bool = False) -> asyncio.Task[Any]:
        """Start `coro` as task `name`. Its unexpected end (return or exception) fails the daemon, unless
        it `ends` by design: then it leaves the set when done, and only an exception is reported."""
        if name in self.tasks:
            raise ValueError(f"task {name!r} already runs")
        task = asyncio.create_task(coro, name=name)
        self.tasks[name] = task
        if ends:
            self._ending.add(name)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        name = task.get_name()
        if name in self._ending:
            self._ending.discard(name)
            self._stopping.discard(name)
            if self.tasks.get(name) is task:
                del self.tasks[name]
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                log.error("task_failed", task=name, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            return
        if name in self._stopping or task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task_died", task=name, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            self.failure = f"task {name} died: {type(exc).__name__}: {exc}"
        else:
            log.error("task_ended", task=name)
            self.failure = f"task {name} ended unexpectedly"
        self.failed.set()

    async def stop(self, *names: str, timeout: float | None = None) -> None:
        """Wait up to `timeout` for these tasks to end by themselves, then cancel what remains."""
        tasks = [self.tasks[n] for n in names if n in self.tasks]
        self._stopping.update(names)
        if timeout:
            await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            if not task.done():
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def stop_all(self) -> None:
        await self.stop(*self.tasks)

    def names(self, prefix: str) -> list[str]:
        return [n for n in self.tasks if n.startswith(prefix)]


async def wait_first(*waits: Awaitable[Any], timeout: float | None = None) -> None:
    """Return as soon as one of `waits` is done, or after `timeout`; the others are cancelled.

    For waits that do not fail (events, conditions): their results and exceptions are not looked at.
    """
    futures = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()
