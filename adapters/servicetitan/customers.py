"""A bounded, expiring cache of ServiceTitan customers (names change rarely; jobs ask often)."""

from __future__ import annotations

import time
from collections import OrderedDict

from adapters.servicetitan.models import Customer

__all__ = ["CustomerCache"]


class CustomerCache:
    """At most ``size`` customers, each kept ``ttl`` seconds, least recently used dropped first."""

    def __init__(self, size: int, ttl: float) -> None:
        self._entries: OrderedDict[int, tuple[float, Customer]] = OrderedDict()
        self._size = size
        self._ttl = ttl

    def get(self, cid: int) -> Customer | None:
        """The cached customer, or None when absent or expired."""
        entry = self._entries.get(cid)
        if entry is None:
            return None
        stored_at, customer = entry
        if time.monotonic() - stored_at > self._ttl:
            del self._entries[cid]
            return None
        self._entries.move_to_end(cid)
        return customer

    def put(self, customer: Customer) -> None:
        """Cache a customer just read."""
        self._entries[customer.id] = (time.monotonic(), customer)
        self._entries.move_to_end(customer.id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every customer (another tenant)."""
        self._entries.clear()
