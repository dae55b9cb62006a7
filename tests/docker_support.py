"""Fixtures for tests against the real Docker engine and a real registry on 127.0.0.1.

Loaded for every test folder (the core's and each provider's) by the root conftest.py.
Without an engine these fixtures skip, except when DEPLOYER_REQUIRE_DOCKER=1 (set by
.ci/run): then a missing engine, base image or registry fails the test, so CI never
skips silently.

- ``docker``: a docker SDK client (engine reachable, base image present)
- ``iris_project`` / ``iris_image``: the iris example as a project with a local target,
  and its built image (session-scoped, built once)
- ``registry``: Debian's docker-registry with htpasswd auth, as a ``LocalRegistry``
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = os.environ.get("DEPLOYER_BASE_IMAGE", "deployer-base:bookworm-py311")
REQUIRED = os.environ.get("DEPLOYER_REQUIRE_DOCKER") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI demands every Docker-backed test runs."""
    if REQUIRED:
        pytest.fail(f"{reason} (DEPLOYER_REQUIRE_DOCKER=1)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_project(folder: Path, name: str, port: int, model: str = "model.joblib") -> Path:
    """A deployer.yaml with the model file and one local target."""
    (folder / "deployer.yaml").write_text(
        f"name: {name}\nmodel:\n  path: {model}\n"
        f"targets:\n  local:\n    provider: local\n    port: {port}\n"
    )
    return folder / "deployer.yaml"


@dataclass(frozen=True)
class LocalRegistry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``; pushes need the credentials."""

    host: str
    username: str
    password: str = field(repr=False)


def remove_tags(docker: Any, matches: Callable[[str], bool]) -> list[str]:
    """Remove every image tag and digest reference for which ``matches(ref)`` is true
    (``noprune``: the untagged layers stay as build cache). Returns what was removed."""
    removed = []
    for image in docker.images.list():
        for ref in [*image.tags, *image.attrs.get("RepoDigests", [])]:
            if matches(ref):
                with contextlib.suppress(Exception):  # already gone is fine
                    docker.images.remove(ref, noprune=True)
                    removed.append(ref)
    return removed


def repository_of(ref: str) -> str:
    """``host:port/team/name:tag`` or ``...@sha256:...`` -> ``host:port/team/name``."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def remove_repository(docker: Any, repository: str) -> list[str]:
    """Remove the tags of one repository (a test project's images, for example)."""
    return remove_tags(docker, lambda ref: repository_of(ref) == repository)


@pytest.fixture(scope="session")
def docker() -> Iterator[Any]:
    """The engine's client. At the end of the session it removes the router and front
    images (``deployer-router:*``, ``deployer-front:*``) that the tests built through the
    product (``deployer router image``, the local target's front) and that were not there
    before."""
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
    before = {tag for image in client.images.list() for tag in image.tags}
    yield client
    built = ("deployer-router", "deployer-front")
    remove_tags(client, lambda ref: repository_of(ref) in built and ref not in before)


@pytest.fixture(scope="session", autouse=True)
def _base_image_env() -> Iterator[None]:
    """Builds in tests use the local base image (no registry is reachable)."""
    old = os.environ.get("DEPLOYER_BASE_IMAGE")
    os.environ["DEPLOYER_BASE_IMAGE"] = BASE_IMAGE
    yield
    if old is None:
        os.environ.pop("DEPLOYER_BASE_IMAGE", None)
    else:
        os.environ["DEPLOYER_BASE_IMAGE"] = old


@pytest.fixture(scope="session")
def iris_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("iris-model") / "model.joblib"
    subprocess.run([sys.executable, str(REPO / "examples/iris/train.py"), str(target)], check=True)
    return target


@pytest.fixture(scope="session")
def iris_project(
    docker: Any, tmp_path_factory: pytest.TempPathFactory, iris_model_file: Path
) -> Iterator[Any]:
    """A git-tracked project folder with the iris model and a local target on a free port."""
    from deployer import Project

    folder = tmp_path_factory.mktemp("iris-project")
    shutil.copy(iris_model_file, folder / "model.joblib")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=folder, check=True)
    project = Project.load(write_project(folder, "iris-test", free_port()))
    yield project
    project.destroy(["local"])
    remove_repository(docker, "iris-test")


@pytest.fixture(scope="session")
def iris_image(iris_project: Any) -> Any:
    return iris_project.build()


def local_url(project: Any) -> str:
    """The URL of a project's ``local`` target (its stable front port)."""
    return f"http://127.0.0.1:{project.config.targets['local'].model_extra['port']}"


@contextlib.contextmanager
def pushed_example(
    docker: Any, folder: Path, example: str, name: str, model_arg: str = ""
) -> Iterator[Any]:
    """examples/``example`` as a project in ``folder``: its create.py writes the model
    (into ``folder / model_arg``), deployer.yaml gets ``name`` and a free port, and the
    project is pushed to its local target; destroyed and its image tags removed after."""
    from serving_support import EXAMPLES

    from deployer import Project

    source = EXAMPLES / example
    subprocess.run(
        [sys.executable, str(source / "create.py"), str(folder / model_arg)],
        check=True,
        capture_output=True,
    )
    config = yaml.safe_load((source / "deployer.yaml").read_text())
    text = (source / "deployer.yaml").read_text()
    text = text.replace(f"name: {config['name']}", f"name: {name}")
    port = config["targets"]["local"]["port"]
    (folder / "deployer.yaml").write_text(text.replace(f"port: {port}", f"port: {free_port()}"))
    shutil.copy(source / "create.py", folder / "create.py")
    project = Project.load(folder / "deployer.yaml")
    try:
        result = project.push(["local"])
        assert result.ok, result.targets[0].error
        yield project
    finally:
        project.destroy(["local"])
        remove_repository(docker, name)


@contextlib.contextmanager
def run_registry(folder: Path, username: str, password: str) -> Iterator[LocalRegistry]:
    """Debian's docker-registry on 127.0.0.1 with htpasswd (bcrypt) auth for one user."""
    import bcrypt

    binary = shutil.which("docker-registry")
    if binary is None:
        unavailable("docker-registry is not installed (apt-get install docker-registry)")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    (folder / "htpasswd").write_text(f"{username}:{hashed}\n")
    port = free_port()
    (folder / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}, "
        "delete: {enabled: true}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
        f"auth: {{htpasswd: {{realm: deployer-test, path: {folder / 'htpasswd'}}}}}\n"
    )
    process = subprocess.Popen(
        [str(binary), "serve", str(folder / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/").status_code == 401:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    host = f"127.0.0.1:{port}"
    try:
        yield LocalRegistry(host, username, password)
    finally:
        process.terminate()
        process.wait(timeout=10)
        engine = _docker_or_none()
        if engine is not None:  # what tests pushed there, or pulled from it
            remove_tags(engine, lambda ref: ref.split("/", 1)[0] == host)


def _docker_or_none() -> Any:
    from deployer.image.engine import docker_client

    try:
        return docker_client()
    except Exception:
        return None


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry with user ``ci-user`` (see ``run_registry``)."""
    with run_registry(tmp_path_factory.mktemp("registry"), "ci-user", "s3cret-for-tests") as reg:
        yield reg
