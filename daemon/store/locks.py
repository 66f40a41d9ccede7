"""PostgreSQL advisory lock keys: one per (role, tenant), shared by the leader and the reconciliation."""

from __future__ import annotations

import zlib


def lock_key(role: str, tenant_id: int) -> int:
    """A stable 63-bit advisory lock key for (role, tenant)."""
    return (zlib.crc32(role.encode()) << 31 ^ tenant_id) & 0x7FFF_FFFF_FFFF_FFFF
