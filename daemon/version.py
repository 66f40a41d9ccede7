"""The installed version of st-intacct-sync, for `--version`, /status and `build_info`."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("st-intacct-sync")
except metadata.PackageNotFoundError:  # pragma: no cover - run from a tree that was never installed
    VERSION = "0+unknown"
