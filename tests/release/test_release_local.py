"""The audit trail and a gate with the real ``local`` target (Docker): push records the
release and its gates, ``history`` finds the container's live version, destroy is on
record, the chain verifies."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import free_port, remove_repository, write_project
from release_support import cli

from deployer import Project
from deployer.audit import AuditLog

pytestmark = pytest.mark.docker
NAME = "iris-audit"


@pytest.fixture
def project(
    docker: Any, iris_model_file: Path, tmp_path: Path, identity: None
) -> Iterator[Project]:
    """The iris model with a local target, a gate, and an evaluation of this model."""
    shutil.copy(iris_model_file, tmp_path / "model.joblib")
    file = write_project(tmp_path, NAME, free_port())
    file.write_text(file.read_text() + 'release:\n  gates: ["accuracy >= live - 0.05"]\n')
    loaded = Project.load(file)
    loaded.lock()
    lock = json.loads((tmp_path / "deployer.lock").read_text())
    lock["evaluation"] = {"model_sha256": loaded.model_sha256(), "metrics": {"accuracy": 0.96}}
    (tmp_path / "deployer.lock").write_text(json.dumps(lock))
    try:
        yield loaded
    finally:
        loaded.destroy(["local"])
        remove_repository(docker, NAME)


def test_push_history_and_destroy_on_record_with_the_local_target(project: Project) -> None:
    file = str(project.file)
    pushed = cli("push", "--to", "local", "-f", file, "--reason", "first on this laptop")
    assert pushed.exit_code == 0, pushed.stderr
    assert "no live version on local" in pushed.stderr

    finished = AuditLog(project.root).records()[-1]
    assert (finished["action"], finished["outcome"]) == ("push", "succeeded")
    assert finished["metrics"] == {"accuracy": 0.96}
    assert finished["gates"][0]["passed"] is True
    assert finished["image"]["digest"].startswith("sha256:")
    version = finished["version"]

    planned = cli("plan", "--to", "local", "-f", file, "-o", "json")
    assert planned.exit_code == 0, planned.stderr
    [gate] = json.loads(planned.stdout)["gates"]
    assert gate["threshold"] == pytest.approx(0.91)  # the live version's recorded accuracy

    shown = json.loads(cli("history", "-f", file, "-o", "json").stdout)
    [local] = shown["targets"]
    assert local["live_version"] == version and local["state"] == "healthy"
    assert local["entries"][-1]["live"] is True
    assert local["entries"][-1]["why"]["reason"] == "first on this laptop"

    gone = cli("destroy", "--to", "local", "-y", "-f", file)
    assert gone.exit_code == 0, gone.stderr
    assert AuditLog(project.root).records()[-1]["action"] == "destroy"
    assert cli("audit", "verify", "-f", file).exit_code == 0
