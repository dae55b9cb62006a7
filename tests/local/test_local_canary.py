"""push --to local with canary:N and live gates: real model containers behind the real
front, traffic sent by the test through the front until the push returns. A canary whose
predictor raises for every request (500s) is rolled back with the live gate's reason; a
good one is promoted."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_support import free_port, remove_repository

from deployer import Project

pytestmark = pytest.mark.docker
NAME = "canary-local-test"
ROW = [[5.1, 3.5, 1.4, 0.2]]

PREDICTOR = '''
import json
from pathlib import Path

import numpy as np


class Predictor:
    """Answers 0.0 per row, or raises for every request when the model file says so."""

    signature = {"width": 4, "datatype": "FP64", "outputs": ["predict"]}

    def load(self, path):
        self.spec = json.loads(Path(path).read_text())

    def predict(self, rows, parameters=None):
        if self.spec["fail"]:
            raise RuntimeError("this model version is broken")
        return np.zeros(len(rows))
'''


def write_model(folder: Path, generation: int, fail: bool) -> None:
    (folder / "model.json").write_text(json.dumps({"generation": generation, "fail": fail}))


@pytest.fixture(scope="module")
def project(docker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A python-flavour project whose first version serves on the local target."""
    folder = tmp_path_factory.mktemp("local-canary")
    (folder / "predictor.py").write_text(PREDICTOR)
    write_model(folder, 1, fail=False)
    (folder / "deployer.yaml").write_text(
        f"name: {NAME}\n"
        "model:\n  flavor: python\n  predictor: predictor:Predictor\n"
        "  code: [predictor.py]\n  path: model.json\n"
        f"targets:\n  local:\n    provider: local\n    port: {free_port()}\n"
        "release:\n  live: {interval_seconds: 1, min_requests: 10}\n"
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=folder, check=True)
    loaded = Project.load(folder / "deployer.yaml")
    result = loaded.push(["local"])
    assert result.ok, result.targets[0].error
    yield loaded
    loaded.destroy(["local"])
    remove_repository(docker, NAME)


def front(project: Project) -> str:
    return f"http://127.0.0.1:{project.config.targets['local'].model_extra['port']}"


class Traffic:
    """Posts predictions through the front from a thread until stopped; counts answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self.stop.is_set() and len(self.statuses) < 100_000:
                try:
                    answer = client.post(self.url + "/invocations", json=ROW)
                    self.statuses.append(answer.status_code)
                except httpx.HTTPError:
                    self.statuses.append(0)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def canary_push(project: Project, lines: list[str]) -> Any:
    url = front(project)
    with Traffic(url) as traffic:
        result = project.push(
            ["local"],
            strategy="canary:50",
            bake_seconds=4,
            events=lambda _target, line: lines.append(line),  # "progress: ..." lines
        )
    assert traffic.statuses, "the traffic thread sent nothing"
    return result, traffic


def serving_version(project: Project) -> str | None:
    return project.status(["local"])[0].version


def test_a_canary_answering_500s_is_rolled_back_and_a_good_one_promoted(
    project: Project,
) -> None:
    folder = project.file.parent
    first = serving_version(project)
    write_model(folder, 2, fail=True)
    bad = Project.load(project.file)
    lines: list[str] = []
    result, traffic = canary_push(bad, lines)
    (target,) = result.targets
    assert not result.ok
    assert "live gate: error rate " in (target.error or ""), target.error
    assert f"rolled back: {first} keeps serving" in (target.error or "")
    assert any("front: 50% of the requests" in line for line in lines)
    assert 500 in traffic.statuses  # the canary really took a share and failed it
    status = bad.status(["local"])[0]
    assert status.healthy and status.version == first and "canary" not in status.details
    answer = httpx.post(front(bad) + "/invocations", json=ROW)
    assert answer.status_code == 200  # the old version alone serves again

    write_model(folder, 3, fail=False)
    good = Project.load(project.file)
    lines = []
    result, traffic = canary_push(good, lines)
    assert result.ok, result.targets[0].error
    assert any("live gate: pass" in line for line in lines)
    assert set(traffic.statuses) == {200}  # no request failed during canary and promotion
    status = good.status(["local"])[0]
    assert status.healthy and status.version == result.targets[0].version != first
    assert status.details["previous_version"] == first


def test_a_crash_mid_canary_shows_as_updating_and_the_next_push_repairs_it(
    project: Project,
) -> None:
    import os
    import sys

    folder = project.file.parent
    before = Project.load(project.file)
    first = serving_version(before)
    write_model(folder, 4, fail=False)
    env = {**os.environ, "DEPLOYER_FAULT": "push:canary"}
    killed = subprocess.run(
        [sys.executable, "-m", "deployer", "push", "--to", "local", "--strategy", "canary:50",
         "--bake", "60", "-f", str(project.file)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr  # SIGKILLed at the boundary
    crashed = Project.load(project.file)
    status = crashed.status(["local"])[0]
    assert status.state == "updating" and status.version == first, status
    canary = status.details["canary"]
    assert canary["percent"] == 50 and canary["version"] not in (None, first)
    assert f"canary {canary['version']} takes 50% of the requests beside {first}" == status.reason
    result = crashed.push(["local"])  # all at once: converges from what is there
    assert result.ok, result.targets[0].error
    status = crashed.status(["local"])[0]
    assert status.healthy and status.version == canary["version"]
    assert "canary" not in status.details and status.details["previous_version"] == first
