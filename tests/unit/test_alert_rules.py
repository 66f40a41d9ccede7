"""The shipped Prometheus alert rules: valid (`promtool check rules`), and each alert fires on the series
it is written for (`promtool test rules`, with the cases in prometheus/alerts.test.yml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parents[2] / "prometheus"
ALERTS = {"StIntacctSyncTargetDown", "StIntacctSyncConnectionDown", "StIntacctSyncDatabaseDown",
          "StIntacctSyncRecordsFailed", "StIntacctSyncOldestPendingTooOld", "StIntacctSyncNoReconciliation"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60, cwd=RULES_DIR)


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", "alerts.yml")
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = _promtool("test", "rules", "alerts.test.yml")
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_case() -> None:
    import yaml

    rules = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert names == ALERTS
    cases = yaml.safe_load((RULES_DIR / "alerts.test.yml").read_text())
    firing = {case["alertname"] for test in cases["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert firing == ALERTS
