"""deployer build and deployer check against the real Docker engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from deployer import Project
from deployer.errors import MissingDependencyError
from deployer.image.build import BuildError
from deployer.image.wheelhouse import WheelhouseError
from deployer.lockfile import sha256_of

pytestmark = pytest.mark.docker


def test_image_carries_labels_entrypoint_and_model(
    iris_project: Project, iris_image: Any, docker: Any
) -> None:
    labels = iris_image.labels
    assert labels["dev.deployer.model.sha256"] == sha256_of(iris_project.model_path)
    assert labels["dev.deployer.project"] == "iris-test"
    assert labels["dev.deployer.model.flavor"] == "sklearn"
    assert len(labels["org.opencontainers.image.revision"]) == 40
    config = docker.api.inspect_image(iris_image.id)["Config"]
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", "deployer.serving"]
    assert config["Cmd"] == ["serve"]
    assert iris_image.size > 50_000_000


def test_rebuild_with_nothing_changed_adds_no_layer(iris_project: Project, iris_image: Any) -> None:
    again = iris_project.build()
    assert again.id == iris_image.id


def test_new_model_rebuilds_only_the_model_layers(
    iris_project: Project, iris_image: Any, docker: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(iris_project.root, folder)
    with open(folder / "model.joblib", "ab") as f:
        f.write(b"\0")  # joblib ignores trailing bytes: a new file, the same model
    changed = Project.load(folder / "deployer.yaml").build()
    assert changed.id != iris_image.id
    old_layers = docker.api.inspect_image(iris_image.id)["RootFS"]["Layers"]
    new_layers = docker.api.inspect_image(changed.id)["RootFS"]["Layers"]
    assert len(old_layers) == len(new_layers)
    differing = [i for i, (a, b) in enumerate(zip(old_layers, new_layers, strict=True)) if a != b]
    # serving.json (model version) and the model itself: the last two layers, nothing else
    assert differing == [len(new_layers) - 2, len(new_layers) - 1]


def test_check_passes_every_contract_in_both_modes(iris_project: Project, iris_image: Any) -> None:
    report = iris_project.check(iris_image.ref)
    failures = [r for r in report.results if not r.passed]
    assert failures == []
    contracts = {(r.contract, r.mode) for r in report.results}
    for contract in ("SageMaker", "Vertex AI", "Azure ML", "OIP v2", "SIGTERM"):
        assert (contract, "root") in contracts
        assert (contract, "non-root, read-only") in contracts


def test_check_fails_an_image_that_does_not_serve(
    docker: Any, iris_project: Project, iris_image: Any
) -> None:
    """An image whose server cannot start fails every contract, with its logs in the detail."""
    source = docker.containers.create(iris_image.id)
    try:
        docker.api.commit(
            source.id,
            repository="deployer-test-broken",
            tag="latest",
            changes=["ENV DEPLOYER_SERVING_CONFIG=/nonexistent.json"],
        )
    finally:
        source.remove(force=True)
    try:
        report = iris_project.check("deployer-test-broken:latest")
        assert not report.passed
        assert all(not r.passed for r in report.results if r.contract == "SageMaker")
        assert "cannot read serving settings" in report.results[0].detail
    finally:
        docker.images.remove("deployer-test-broken:latest", force=True)


def test_failing_build_step_is_named_with_its_output(
    docker: Any, iris_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base image without python3: the RUN step fails and the error shows it."""
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as tar:
        info = tarfile.TarInfo("etc")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    docker.api.import_image_from_file(str(empty), repository="deployer-test-nopython", tag="latest")
    monkeypatch.setenv("DEPLOYER_BASE_IMAGE", "deployer-test-nopython:latest")
    try:
        with pytest.raises(BuildError) as caught:
            iris_project.build(tag="deployer-test-fail:latest")
        assert "step 3/" in caught.value.message and "RUN python3 -m venv" in caught.value.message
    finally:
        docker.images.remove("deployer-test-nopython:latest", force=True)


def test_missing_base_image_says_how_to_fix(
    iris_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a loopback registry nobody runs: the pull fails fast and never leaves this machine
    monkeypatch.setenv("DEPLOYER_BASE_IMAGE", "127.0.0.1:9/nothing/base:1")
    with pytest.raises(MissingDependencyError) as caught:
        iris_project.build(tag="deployer-test-fail:latest")
    assert "127.0.0.1:9/nothing/base:1" in caught.value.message
    assert "image.base" in (caught.value.hint or "")


def test_requirement_without_a_wheel_is_reported(iris_project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "p"
    shutil.copytree(iris_project.root, folder)
    text = (folder / "deployer.yaml").read_text()
    (folder / "deployer.yaml").write_text(
        text + "image:\n  requirements: ['no-such-package-deployer-test==9.9']\n"
    )
    with pytest.raises(WheelhouseError, match="could not download wheels"):
        Project.load(folder / "deployer.yaml").build()


def test_cli_without_a_docker_engine_exits_3(iris_project: Project) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "build", "-f", str(iris_project.file)],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        timeout=120,
    )
    assert result.returncode == 3
    assert "cannot reach a Docker engine at unix:///nonexistent/docker.sock" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_image_serves_its_own_model_under_sagemakers_artifact_mount(
    iris_image: Any, docker: Any, tmp_path: Path
) -> None:
    """SageMaker mounts the model artifact's folder at /opt/ml/model (its SDK's local mode
    too). The image's model is not there, so it still serves, and says what it ignored."""
    from deployer.image.containers import RunningContainer, free_port, wait_healthy

    artifact = tmp_path / "model-data"
    artifact.mkdir()
    (artifact / "model.tar.gz").write_bytes(b"someone else's model")
    artifact.chmod(0o755)
    port = free_port()
    container = docker.containers.run(
        iris_image.id,
        command=["serve"],
        detach=True,
        ports={"8080/tcp": ("127.0.0.1", port)},
        volumes={str(artifact): {"bind": "/opt/ml/model", "mode": "ro"}},
        labels={"dev.deployer.test": "artifact-mount"},
    )
    running = RunningContainer(container, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(running, "/ping", timeout=120)
        import httpx

        answer = httpx.post(running.url + "/invocations", json=[[5.1, 3.5, 1.4, 0.2]], timeout=30)
        assert answer.status_code == 200, answer.text
        logs = running.logs(200)
        assert "not using SageMaker's model data at /opt/ml/model" in logs, logs
        assert "(/opt/deployer/model/model.joblib)" in logs, logs
    finally:
        running.remove()
