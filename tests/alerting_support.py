"""Shared helpers of the alerting tests: the rules, promtool."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

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


class Prometheus:
    """A real Prometheus (Debian's ``prometheus``) on a free loopback port, scraping
    ``targets`` every second and evaluating ``rules`` every second."""

    def __init__(self, folder: Path, targets: list[str], rules: Path) -> None:
        from serving_support import free_port

        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is not installed: apt-get install prometheus")
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "model", "static_configs": [{"targets": targets}]}],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10.0)

    def until(self, what: str, check: Callable[[], Any], timeout: float = 180.0) -> Any:
        """Poll ``check`` until it returns something truthy; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            try:
                found = check()
            except httpx.TransportError:
                found = None
            if found:
                return found
            time.sleep(0.2)
        pytest.fail(f"Prometheus: {what} never happened:\n{self.log.read_text(errors='replace')}")

    def get(self, path: str, **params: str) -> Any:
        answer = self.client.get(path, params=params)
        body = answer.json()
        assert body.get("status") == "success", body
        return body["data"]

    def firing(self, alert: str) -> bool:
        alerts = self.get("/api/v1/alerts")["alerts"]
        return any(a["labels"]["alertname"] == alert and a["state"] == "firing" for a in alerts)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
