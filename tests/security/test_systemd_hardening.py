"""Finding 10: the units start the program by absolute path, cap its file descriptors and memory, hide
the non-process parts of /proc, show how to fence its network, and rate no worse under
`systemd-analyze security`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_systemd_units import UNITS, _analyze, _copies, one, parse_unit

# Overall exposure of both units when this suite was written (1.2 "OK"): never worse than this.
EXPOSURE_CEILING = 1.2
# Enough for the HTTP connection cap, the database pool and both API sessions many times over.
MIN_NOFILE = 4096


@pytest.fixture(params=UNITS, ids=lambda p: p.name)
def unit_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_exec_start_is_an_absolute_path(unit_path: Path) -> None:
    """No PATH lookup: the unit runs exactly the binary it names (and `verify` can check it exists)."""
    unit = parse_unit(unit_path.read_text())
    program, *args = one(unit, "Service", "ExecStart").split()
    assert program.startswith("/") and program.endswith("/st-intacct-sync"), program
    assert args == ["--config", "${ST_INTACCT_SYNC_CONFIG}", "run"]


def test_file_descriptors_and_memory_are_capped(unit_path: Path) -> None:
    unit = parse_unit(unit_path.read_text())
    nofile = one(unit, "Service", "LimitNOFILE")
    assert nofile.isdigit() and int(nofile) >= MIN_NOFILE, nofile
    memory = one(unit, "Service", "MemoryMax")
    assert re.fullmatch(r"\d+[KMG]", memory), memory
    assert one(unit, "Service", "ProcSubset") == "pid"


def test_ip_address_fence_is_shown(unit_path: Path) -> None:
    """An IPAddressDeny=/IPAddressAllow= example: the APIs' addresses vary, so it stays commented."""
    text = unit_path.read_text()
    assert re.search(r"^#\s*IPAddressDeny=any$", text, re.M), "no IPAddressDeny= example"
    assert re.search(r"^#\s*IPAddressAllow=\S", text, re.M), "no IPAddressAllow= example"


def test_systemd_analyze_security_does_not_get_worse(tmp_path: Path) -> None:
    analyze = _analyze()
    for copy in _copies(tmp_path):
        result = subprocess.run([analyze, "security", "--offline=true", str(copy)], capture_output=True,
                                text=True, timeout=60, cwd=tmp_path)
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
        if found is None:
            pytest.skip(f"systemd-analyze security --offline is unavailable: {result.stderr.strip()[:300]}")
        print(f"{copy.name}: exposure {found[1]}")
        assert float(found[1]) <= EXPOSURE_CEILING, result.stdout
