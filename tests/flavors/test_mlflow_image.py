"""The MLflow example (a custom pyfunc model) as a user ships it: build the image (with
mlflow-skinny, no full MLflow), prove its contracts with ``check``, ``push --to local``
(smoke-tested with MLflow's input example) and predict through the local front.
One image build for the whole module."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_support import free_port, remove_repository

from deployer import Project

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/mlflow"
NAME = "mlflow-iris-test"
BODY = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def project(docker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The example's deployer.yaml with this test's name and a free port, and its model."""
    folder = tmp_path_factory.mktemp("mlflow-example")
    port = free_port()
    text = (EXAMPLE / "deployer.yaml").read_text()
    text = text.replace("name: mlflow-iris", f"name: {NAME}").replace("port: 8080", f"port: {port}")
    (folder / "deployer.yaml").write_text(text)
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_model.py"), str(folder / "model")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    project = Project.load(folder / "deployer.yaml")
    yield project
    project.destroy(["local"])
    remove_repository(docker, NAME)


def test_build_check_push_and_predict(project: Project, docker: Any) -> None:
    image = project.build()
    listing = "import importlib.metadata as m; print(*(d.name for d in m.distributions()))"
    installed = docker.containers.run(
        image.ref, ["-c", listing], entrypoint=["/opt/venv/bin/python"], remove=True
    ).decode()
    names = {name.lower() for name in installed.split()}
    assert "mlflow-skinny" in names and "mlflow" not in names  # the lean runtime
    assert "scikit-learn" in names  # from the model's own requirements.txt

    report = project.check(image.ref)
    assert [r for r in report.results if not r.passed] == []

    result = project.push(["local"])
    assert result.ok, result.targets[0].error
    port = project.config.targets["local"].model_extra["port"]
    response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=BODY, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["setosa", "virginica"]}
