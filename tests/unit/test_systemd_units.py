"""The systemd units: the directives the daemon relies on, and `systemd-analyze verify`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from daemon.config.loading import parse_config

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
MAIN = SYSTEMD / "st-intacct-sync.service"
TEMPLATE = SYSTEMD / "st-intacct-sync@.service"
UNITS = [MAIN, TEMPLATE]
EXEC = "/opt/st-intacct-sync/venv/bin/st-intacct-sync"  # the virtualenv systemd/README.md installs

# Where each credential goes in the config: (section path, key) → the LoadCredential id.
CREDENTIALS = {
    (("servicetitan",), "app_key"): "st_app_key",
    (("servicetitan",), "client_secret"): "st_client_secret",
    (("intacct",), "sender_password"): "intacct_sender_password",
    (("intacct",), "user_password"): "intacct_user_password",
    (("http",), "token"): "http_token",
    (("report", "email"), "password"): "smtp_password",
}
DRAIN_MAX_S = 90  # daemon.supervisor drains in-flight requests for min(request_timeout + 5 s, 90 s)

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """A unit file as {section: {key: [values in order]}} (keys repeat: LoadCredential=, Environment=)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):  # continuation: systemd joins with a space
            logical.append(line[:-1].strip())
            continue
        line = " ".join([*logical, line]).strip()
        logical = []
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], defaultdict(list))
            continue
        assert section is not None, f"directive outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        section[key.strip()].append(value.strip())
    return unit


def seconds(value: str) -> float:
    """A systemd time span (`90`, `30s`, `2min`, `1min 30s`) in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}= set {len(values)} times: {values}"
    return values[0]


def environment(unit: Unit) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in unit["Service"].get("Environment", []):
        for item in line.split():
            name, _, value = item.partition("=")
            env[name] = value
    return env


@pytest.fixture(params=UNITS, ids=lambda p: p.name)
def unit_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_type_notify_reload_restart_and_watchdog(unit_path: Path) -> None:
    unit = parse_unit(unit_path.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    exec_start = one(unit, "Service", "ExecStart")
    assert exec_start == f"{EXEC} --config ${{ST_INTACCT_SYNC_CONFIG}} run"
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert seconds(one(unit, "Service", "RestartSec")) >= 1
    assert one(unit, "Service", "RestartPreventExitStatus") == "2"  # a config error: restarting won't help
    assert seconds(one(unit, "Service", "WatchdogSec")) == 30
    # The stop timeout covers the longest drain plus closing the pool and sessions.
    assert seconds(one(unit, "Service", "TimeoutStopSec")) >= DRAIN_MAX_S + 15
    # The start timeout covers the connection checks (30 s at most each, run together) and migrations.
    assert seconds(one(unit, "Service", "TimeoutStartSec")) >= 60
    # SIGTERM to the daemon only: an embedded PostgreSQL must outlive the drain that writes to it.
    assert one(unit, "Service", "KillMode") == "mixed"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert "network-online.target" in one(unit, "Unit", "After")


def test_dedicated_user_state_directory_and_config_path(unit_path: Path) -> None:
    unit = parse_unit(unit_path.read_text())
    template = "@" in unit_path.name
    assert one(unit, "Service", "User") == one(unit, "Service", "Group") == "st-intacct-sync"
    assert "DynamicUser" not in unit["Service"]
    state = "st-intacct-sync/%i" if template else "st-intacct-sync"
    assert one(unit, "Service", "StateDirectory") == state
    assert one(unit, "Service", "WorkingDirectory") == f"%S/{state}"
    config = "/etc/st-intacct-sync/%i.yaml" if template else "/etc/st-intacct-sync/config.yaml"
    assert environment(unit)["ST_INTACCT_SYNC_CONFIG"] == config


def _credential_folder(unit_path: Path) -> str:
    return "/etc/st-intacct-sync/acme" if "@" in unit_path.name else "/etc/st-intacct-sync/credentials"


def test_secrets_are_files_the_daemon_reads_itself(unit_path: Path) -> None:
    """No LoadCredential=: systemd would copy them once (a reload keeps an expired password) and a missing
    one would fail the start with 243/CREDENTIALS; the comment shows the config keys, one file each."""
    text = unit_path.read_text()
    unit = parse_unit(text)
    assert "LoadCredential" not in unit["Service"] and "LoadCredentialEncrypted" not in unit["Service"]
    documented = dict(re.findall(r"^#\s+(\w+_file): (\S+)$", text, re.M))
    folder = _credential_folder(unit_path)
    assert documented == {f"{key}_file": f"{folder}/{name}" for (_, key), name in CREDENTIALS.items()}


def _with_files(data: dict, folder: Path, names: dict[tuple[tuple[str, ...], str], str]) -> None:
    for (path, key), name in names.items():
        section = data
        for part in path:
            section = section[part]
        section.pop(key, None)
        section[f"{key}_file"] = str(folder / name)
        (folder / name).write_text(f"secret-of-{name}\n")


ENV = {name: "x" for name in ("ST_CLIENT_ID", "INTACCT_SENDER_ID", "INTACCT_COMPANY_ID", "INTACCT_USER_ID")}


def test_the_documented_file_keys_read_the_credentials(tmp_path: Path) -> None:
    """The config of the unit's comment, with every file present: every secret is read."""
    data = yaml.safe_load((SYSTEMD.parent / "config.yaml").read_text())
    data["report"]["email"]["username"] = "mailer"
    _with_files(data, tmp_path, CREDENTIALS)
    config = parse_config(data, "config.yaml", ENV)
    assert set(config.secrets()) >= {f"secret-of-{name}" for name in CREDENTIALS.values()}


def test_the_shipped_config_needs_no_optional_credential(tmp_path: Path) -> None:
    """A first deploy: the shipped config.yaml with only the four API secrets as files, in the unit's
    environment (no ${...} variable set, no $CREDENTIALS_DIRECTORY): valid, no token, no SMTP password.
    The `token: ${ST_INTACCT_SYNC_TOKEN}` line stays as shipped: its variable is unset, so it is absent."""
    data = yaml.safe_load((SYSTEMD.parent / "config.yaml").read_text())
    required = {k: v for k, v in CREDENTIALS.items() if k[0][0] in ("servicetitan", "intacct")}
    _with_files(data, tmp_path, required)
    unit = parse_unit(MAIN.read_text())
    config = parse_config(data, "config.yaml", {**environment(unit), **ENV})
    assert "ST_INTACCT_SYNC_TOKEN" not in environment(unit) and data["http"]["token"] == "${ST_INTACCT_SYNC_TOKEN}"
    assert config.http.token is None and config.report.email is not None and config.report.email.password is None
    assert len(config.secrets()) == 4


HARDENING = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "SystemCallArchitectures": "native",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def test_hardening(unit_path: Path) -> None:
    unit = parse_unit(unit_path.read_text())
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    assert unit["Service"]["SystemCallFilter"][0] == "@system-service"
    # Nothing the daemon writes outside its state directory.
    assert "ReadWritePaths" not in unit["Service"]


def test_template_differs_only_by_instance() -> None:
    """The two units keep the same behaviour: only names, paths and comments differ."""
    main, template = parse_unit(MAIN.read_text()), parse_unit(TEMPLATE.read_text())
    for section in main:
        for key, values in main[section].items():
            expected = [v.replace("/etc/st-intacct-sync/config.yaml", "/etc/st-intacct-sync/%i.yaml")
                        for v in values]
            if key in ("Description", "StateDirectory", "WorkingDirectory", "SyslogIdentifier"):
                assert all("%i" in v for v in template[section][key]), key
            else:
                assert template[section][key] == expected, key
    assert {k for s in template.values() for k in s} == {k for s in main.values() for k in s}


# ---- systemd-analyze -----------------------------------------------------------------------------

PROBLEM = re.compile(r"unknown|invalid|failed|not executable|ignoring|bad |missing|error", re.I)


def _analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed")
    return path


def _copies(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this checkout's console script (verify checks it exists)."""
    script = Path(sys.executable).parent / "st-intacct-sync"
    binary = str(script) if script.exists() else "/bin/true"
    out = []
    for path, name in ((MAIN, MAIN.name), (TEMPLATE, "st-intacct-sync@acme.service")):
        text = path.read_text().replace(f"ExecStart={EXEC}", f"ExecStart={binary}")
        assert f"ExecStart={binary}" in text
        copy = tmp_path / name
        copy.write_text(text)
        out.append(copy)
    return out


def _verify(analyze: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([analyze, "verify", "--man=no", *map(str, paths)], capture_output=True, text=True,
                          timeout=60, cwd=paths[0].parent)


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = _analyze()
    # A canary first: this systemd-analyze must report an unknown directive, or it checks nothing here.
    canary = tmp_path / "canary.service"
    canary.write_text("[Service]\nType=notify\nExecStart=/bin/true\nNoSuchDirective=1\n")
    probe = _verify(analyze, canary)
    if "NoSuchDirective" not in probe.stdout + probe.stderr:
        pytest.skip(f"systemd-analyze verify cannot check units here (rc {probe.returncode}): "
                    f"{(probe.stdout + probe.stderr).strip()[:300]}")
    copies = _copies(tmp_path)
    result = _verify(analyze, *copies)
    output = (result.stdout + result.stderr).strip()
    print(f"systemd-analyze verify {' '.join(p.name for p in copies)} → rc {result.returncode}\n{output}")
    problems = [line for line in output.splitlines() if PROBLEM.search(line)]
    assert not problems, output
    assert result.returncode == 0, output


def test_systemd_analyze_security_exposure(tmp_path: Path) -> None:
    """`systemd-analyze security --offline` rates the hardening (printed; asserted 'OK' or better)."""
    analyze = _analyze()
    copies = _copies(tmp_path)
    for copy in copies:
        result = subprocess.run([analyze, "security", "--offline=true", str(copy)], capture_output=True,
                                text=True, timeout=60, cwd=tmp_path)
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
        if found is None:
            pytest.skip(f"systemd-analyze security --offline is unavailable: {result.stderr.strip()[:300]}")
        print(f"{copy.name}: exposure {found[1]} {found[2]}")
        assert float(found[1]) <= 2.0, result.stdout
