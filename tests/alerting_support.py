"""Shared helpers of the alerting tests: the rules, promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deployer.alerting.rules import AlertRule, alert_rules
from deployer.config import MonitoringConfig


def rules(**alerts: object) -> list[AlertRule]:
    return alert_rules(MonitoringConfig.model_validate({"alerts": alerts}))


def promtool() -> str:
    """promtool's path (Debian's prometheus package; setup-machine.sh installs it)."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: apt-get install prometheus")
    return found


def check_rules(path: Path) -> str:
    """``promtool check rules``; fails the test with its output when it refuses the file."""
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
