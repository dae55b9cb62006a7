"""Registry push through the same code path the cloud providers use, to a real registry."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_support import LocalRegistry

from deployer.image.registry import PushError, RegistryAuth, push_image

pytestmark = pytest.mark.docker


def test_push_with_explicit_credentials_returns_a_pullable_digest(
    registry: LocalRegistry, docker: Any, iris_image: Any
) -> None:
    ref = push_image(
        docker,
        iris_image.id,
        f"{registry.host}/iris",
        "v1",
        RegistryAuth(registry.username, registry.password),
        lambda _: None,
    )
    repository, digest = ref.split("@")
    assert repository == f"{registry.host}/iris" and digest.startswith("sha256:")
    manifest = httpx.get(
        f"http://{registry.host}/v2/iris/manifests/v1",
        auth=(registry.username, registry.password),
        headers={"accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.status_code == 200
    assert manifest.headers["docker-content-digest"] == digest
    pulled = docker.images.pull(
        f"{registry.host}/iris",
        tag="v1",
        auth_config={"username": registry.username, "password": registry.password},
    )
    assert pulled.id == iris_image.id


def test_wrong_password_is_refused_without_echoing_it(
    registry: LocalRegistry, docker: Any, iris_image: Any
) -> None:
    with pytest.raises(PushError) as caught:
        push_image(
            docker,
            iris_image.id,
            f"{registry.host}/iris",
            "v2",
            RegistryAuth(registry.username, "not-it"),
            lambda _: None,
        )
    assert (
        "unauthorized" in caught.value.message.lower()
        or "authentication" in caught.value.message.lower()
    )
    assert "not-it" not in str(caught.value)
    assert "not-it" not in repr(RegistryAuth(registry.username, "not-it"))


def test_credentials_are_never_written_to_the_docker_config(
    registry: LocalRegistry,
    docker: Any,
    iris_image: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / ".docker"))
    from deployer.image.engine import docker_client

    client = docker_client()
    push_image(
        client,
        iris_image.id,
        f"{registry.host}/iris",
        "v3",
        RegistryAuth(registry.username, registry.password),
        lambda _: None,
    )
    assert not (tmp_path / ".docker").exists()
    assert os.environ["HOME"] == str(tmp_path)
