"""Wake-ups for code that waits on a record's state (export gating), fed by the store's transitions."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from daemon.store import RecordKey, Transition


class StateWaiters:
    """`wait(key)` returns when a transition of that record is committed in this process.

    Another replica's transitions are not seen here, so waiters also re-read the store on a short
    timeout; this only makes the common case (our own worker syncs it) immediate.
    """

    def __init__(self) -> None:
        self._events: dict[RecordKey, list[asyncio.Event]] = defaultdict(list)

    def on_transitions(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            for event in self._events.pop(t.key, ()):
                event.set()

    async def wait(self, keys: Sequence[RecordKey], timeout: float) -> None:
        """Wait until any of `keys` moves, or `timeout` seconds."""
        event = asyncio.Event()
        for key in keys:
            self._events[key].append(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            for key in keys:
                waiting = self._events.get(key)
                if waiting and event in waiting:
                    waiting.remove(event)
                    if not waiting:
                        del self._events[key]
