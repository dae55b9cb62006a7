"""Registry push through the same code path the cloud providers use, to a real registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import unavailable
from serving_support import free_port

from deployer.image.registry import PushError, RegistryAuth, push_image

pytestmark = pytest.mark.docker
USER, PASSWORD = "ci-user", "s3cret-for-tests"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 with htpasswd (bcrypt) authentication."""
    import bcrypt

    binary = shutil.which("docker-registry")
    if binary is None:
        unavailable("docker-registry is not installed (apt-get install docker-registry)")
    folder = tmp_path_factory.mktemp("registry")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    (folder / "htpasswd").write_text(f"{USER}:{hashed}\n")
    port = free_port()
    (folder / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
        f"auth: {{htpasswd: {{realm: deployer-test, path: {folder / 'htpasswd'}}}}}\n"
    )
    process = subprocess.Popen(
        [str(binary), "serve", str(folder / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v2/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code == 401:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_push_with_explicit_credentials_returns_a_pullable_digest(
    registry: str, docker: Any, iris_image: Any
) -> None:
    ref = push_image(
        docker,
        iris_image.id,
        f"{registry}/iris",
        "v1",
        RegistryAuth(USER, PASSWORD),
        lambda _: None,
    )
    repository, digest = ref.split("@")
    assert repository == f"{registry}/iris" and digest.startswith("sha256:")
    manifest = httpx.get(
        f"http://{registry}/v2/iris/manifests/v1",
        auth=(USER, PASSWORD),
        headers={"accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.status_code == 200
    assert manifest.headers["docker-content-digest"] == digest
    pulled = docker.images.pull(
        f"{registry}/iris", tag="v1", auth_config={"username": USER, "password": PASSWORD}
    )
    assert pulled.id == iris_image.id


def test_wrong_password_is_refused_without_echoing_it(
    registry: str, docker: Any, iris_image: Any
) -> None:
    with pytest.raises(PushError) as caught:
        push_image(
            docker,
            iris_image.id,
            f"{registry}/iris",
            "v2",
            RegistryAuth(USER, "not-it"),
            lambda _: None,
        )
    assert (
        "unauthorized" in caught.value.message.lower()
        or "authentication" in caught.value.message.lower()
    )
    assert "not-it" not in str(caught.value)
    assert "not-it" not in repr(RegistryAuth(USER, "not-it"))


def test_credentials_are_never_written_to_the_docker_config(
    registry: str, docker: Any, iris_image: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / ".docker"))
    from deployer.image.engine import docker_client

    client = docker_client()
    push_image(
        client,
        iris_image.id,
        f"{registry}/iris",
        "v3",
        RegistryAuth(USER, PASSWORD),
        lambda _: None,
    )
    assert not (tmp_path / ".docker").exists()
    assert os.environ["HOME"] == str(tmp_path)
