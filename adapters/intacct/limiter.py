"""A counting semaphore whose priority waiters go before everyone else.

Export gating (`POST /v1/ensure`) must not queue behind the background workers' batches for the few
request slots Intacct allows per company; a plain FIFO semaphore would make it wait for every batch
already queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class PrioritySemaphore:
    """At most `limit` holders; a free slot goes to the oldest priority waiter, then the oldest other."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.held = 0
        self._waiters: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiters)

    async def acquire(self, priority: bool = False) -> None:
        if self.held < self.limit and not self.waiting:
            self.held += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters[0 if priority else 1]
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled: pass it on
            else:
                queue.remove(future)
            raise

    def release(self) -> None:
        for queue in self._waiters:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)  # the slot passes directly to the waiter: held stays
                    return
        self.held -= 1

    @contextlib.asynccontextmanager
    async def slot(self, priority: bool = False) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
