"""Fixtures for tests against the real Docker engine.

Without an engine these tests skip, except when DEPLOYER_REQUIRE_DOCKER=1 (set by
.ci/run): then a missing engine or base image fails them, so CI never skips silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployer import Project

BASE_IMAGE = os.environ.get("DEPLOYER_BASE_IMAGE", "deployer-base:bookworm-py311")
REQUIRED = os.environ.get("DEPLOYER_REQUIRE_DOCKER") == "1"

pytestmark = pytest.mark.docker


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (DEPLOYER_REQUIRE_DOCKER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker() -> Any:
    from deployer.errors import MissingDependencyError
    from deployer.image.engine import docker_client

    try:
        client = docker_client()
    except MissingDependencyError as exc:
        unavailable(f"no Docker engine: {exc.message}")
    try:
        client.images.get(BASE_IMAGE)
    except Exception:
        unavailable(f"base image {BASE_IMAGE} is missing: run scripts/base-image.sh")
    return client


@pytest.fixture(scope="session", autouse=True)
def _base_image_env() -> Iterator[None]:
    old = os.environ.get("DEPLOYER_BASE_IMAGE")
    os.environ["DEPLOYER_BASE_IMAGE"] = BASE_IMAGE
    yield
    if old is None:
        os.environ.pop("DEPLOYER_BASE_IMAGE", None)
    else:
        os.environ["DEPLOYER_BASE_IMAGE"] = old


def write_project(folder: Path, name: str, port: int, model: str = "model.joblib") -> Path:
    (folder / "deployer.yaml").write_text(
        f"name: {name}\nmodel:\n  path: {model}\n"
        f"targets:\n  local:\n    provider: local\n    port: {port}\n"
    )
    return folder / "deployer.yaml"


@pytest.fixture(scope="session")
def iris_project(
    docker: Any, tmp_path_factory: pytest.TempPathFactory, sklearn_model_path: Path
) -> Iterator[Project]:
    """A project folder with the iris model and a local target on a free port."""
    from serving_support import free_port

    folder = tmp_path_factory.mktemp("iris-project")
    shutil.copy(sklearn_model_path, folder / "model.joblib")
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        cwd=folder,
        check=True,
    )
    project = Project.load(write_project(folder, "iris-test", free_port()))
    yield project
    project.destroy(["local"])


@pytest.fixture(scope="session")
def iris_image(iris_project: Project) -> Any:
    return iris_project.build()
