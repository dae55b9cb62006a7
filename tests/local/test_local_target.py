"""push --to local: a real container behind a real front, replaced under load."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_support import free_port, remove_repository, write_project

from deployer import Project

pytestmark = pytest.mark.docker
BODY = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
OURS = {"label": "deployer-project=iris-local-test"}  # docker filter for this module's containers


def front_url(project: Project) -> str:
    return f"http://127.0.0.1:{project.config.targets['local'].model_extra['port']}"


def retrain(project: Project, c: float) -> None:
    """Write a different iris model (another regularisation strength) over the project's."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(C=c, max_iter=500).fit(features, labels), project.model_path)


@pytest.fixture(scope="module")
def deployed(
    iris_project: Project,
    iris_image: Any,
    docker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Project]:
    """A copy of the session's iris project (these tests retrain its model in place)."""
    folder = tmp_path_factory.mktemp("local-target")
    shutil.copy(iris_project.model_path, folder / "model.joblib")
    project = Project.load(write_project(folder, "iris-local-test", free_port()))
    result = project.push(["local"])
    assert result.ok, result.targets[0].error
    yield project
    project.destroy(["local"])
    remove_repository(docker, "iris-local-test")


def test_push_serves_predictions_through_the_real_endpoint(deployed: Project) -> None:
    response = httpx.post(front_url(deployed) + "/invocations", json=BODY)
    assert response.status_code == 200
    expected = (
        deployed.load_model().predict(__import__("numpy").array(BODY), "predict", {}).tolist()
    )
    assert response.json() == {"predictions": expected}
    status = deployed.status(["local"])[0]
    assert status.healthy and status.url == front_url(deployed)


def test_predict_and_status_through_the_cli(deployed: Project) -> None:
    run = [sys.executable, "-m", "deployer"]
    result = subprocess.run(
        [*run, "predict", "--to", "local", "-f", str(deployed.file), "-d", "[[5.1, 3.5, 1.4, 0]]"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"predictions"' in result.stdout
    result = subprocess.run(
        [*run, "status", "-f", str(deployed.file), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"state": "healthy"' in result.stdout


def test_re_push_with_an_unchanged_image_changes_nothing(deployed: Project, docker: Any) -> None:
    before = {c.id for c in docker.containers.list(filters=OURS)}
    result = deployed.push(["local"])
    assert result.ok and result.targets[0].changed is False
    after = {c.id for c in docker.containers.list(filters=OURS)}
    assert after == before
    plan = deployed.plan(["local"])[0]
    assert not plan.changed


def test_new_version_replaces_the_old_with_no_failed_request(
    deployed: Project, docker: Any
) -> None:
    stop = threading.Event()
    statuses: list[int] = []
    errors: list[str] = []
    backends: list[str] = []

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    response = http.post(front_url(deployed) + "/invocations", json=BODY)
                    statuses.append(response.status_code)
                    backends.append(response.headers.get("x-deployer-backend", ""))
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        retrain(deployed, c=0.05)
        result = Project.load(deployed.file).push(["local"])
    finally:
        stop.set()
        thread.join()
    assert result.ok, result.targets[0].error
    assert result.targets[0].changed and result.targets[0].previous_version
    assert errors == []
    assert set(statuses) == {200} and len(statuses) > 20
    assert len(set(backends)) == 2  # traffic moved from the old container to the new one
    assert backends[-1].endswith(result.version)  # the container name, not its address


def test_rollback_returns_to_the_previous_version(deployed: Project) -> None:
    live = deployed.status(["local"])[0].version
    (deployment,) = deployed.rollback(["local"])
    assert deployment.previous_version == live
    assert deployed.status(["local"])[0].version == deployment.version != live


def test_container_that_fails_at_start_is_reported_and_the_old_one_keeps_serving(
    deployed: Project, tmp_path: Path
) -> None:
    before = deployed.status(["local"])[0]
    folder = tmp_path / "crash"
    shutil.copytree(deployed.root, folder)
    (folder / "crash.py").write_text(
        "import os\n"
        "class Predictor:\n"
        "    signature = {'width': 4, 'datatype': 'FP64'}\n"
        "    def load(self, path):\n"
        "        if os.environ.get('DEPLOYER_SERVING_CONFIG'):\n"
        "            raise RuntimeError('weights are corrupt inside the image')\n"
        "    def predict(self, inputs, parameters):\n"
        "        return inputs.sum(axis=1)\n"
    )
    text = (
        (folder / "deployer.yaml")
        .read_text()
        .replace(
            "  path: model.joblib\n",
            "  flavor: python\n  predictor: crash:Predictor\n  code: [crash.py]\n",
        )
    )
    (folder / "deployer.yaml").write_text(text)
    result = Project.load(folder / "deployer.yaml").push(["local"], timeout=120)
    target = result.targets[0]
    assert not result.ok
    assert "weights are corrupt inside the image" in (target.error or "")
    assert "exited with code 3" in (target.error or "")
    after = deployed.status(["local"])[0]
    assert after.healthy and after.version == before.version


def test_port_in_use_is_a_clear_error(iris_project: Project, docker: Any, tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        folder = tmp_path / "busy"
        folder.mkdir()
        shutil.copy(iris_project.model_path, folder / "model.joblib")
        project = Project.load(write_project(folder, "busy-port", holder.getsockname()[1]))
        result = project.push(["local"])
        assert not result.ok
        assert f"port {holder.getsockname()[1]} on 127.0.0.1 is already in use" in (
            result.targets[0].error or ""
        )
        project.destroy(["local"])
    finally:
        holder.close()
        remove_repository(docker, "busy-port")


def test_successful_push_writes_the_router_manifest(deployed: Project) -> None:
    from deployer.router import manifest

    router = manifest.load(deployed.root / "router.yaml")
    (backend,) = router.backends
    assert (backend.name, backend.provider, backend.url) == ("local", "local", front_url(deployed))
    assert router.name == deployed.name


def test_destroy_removes_everything_it_created(deployed: Project, docker: Any) -> None:
    from deployer.router import manifest

    result = deployed.destroy(["local"])
    removed = result["local"]
    assert any(name.startswith("network ") for name in removed)
    assert docker.containers.list(all=True, filters=OURS) == []
    assert deployed.status(["local"])[0].state == "absent"
    # push put the target in router.yaml; destroy takes it out (the file stays)
    assert result.router_backends == ["local"]
    assert manifest.load(deployed.root / "router.yaml").backends == ()
    again = deployed.destroy(["local"])  # idempotent
    assert again["local"] == [] and again.router_backends == []
