"""Release annotations on the local target: labels on the model container, shown
again by status (real Docker engine)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from docker_support import BASE_IMAGE, free_port

from deployer.local import LocalProvider
from deployer.providers import ProjectInfo, Release, Strategy, Target

pytestmark = pytest.mark.docker
ANNOTATIONS = {
    "deployer-model-sha256": "0123456789abcdef0123456789abcdef",
    "deployer-pushed-by": "Ana Lopes <ana@example.com>",
    "deployer-git-commit": "a1b2c3d4e5f6",
    "deployer-release": "20261207T011500Z-3f2a",
}


def test_annotations_label_the_model_container_and_status_shows_them(
    docker: Any, iris_image: Any
) -> None:
    options = {"port": free_port(), "startup_timeout": 120}
    provider = LocalProvider(
        Target("annotated", "local", options),
        ProjectInfo("iris-annotations", base_image=BASE_IMAGE),
    )
    release = Release("iris-annotations", iris_image, [[5.1, 3.5, 1.4, 0.2]], {"width": 4})
    try:
        deployment = provider.deploy(
            dataclasses.replace(release, annotations=ANNOTATIONS),
            iris_image.id,
            Strategy.parse("all-at-once"),
            lambda _m: None,
        )
        status = provider.wait(deployment, 120, lambda _m: None)
        assert status.healthy, status.reason
        assert status.details["annotations"] == ANNOTATIONS
        container = docker.containers.get(status.details["container"])
        assert {k: container.labels[k] for k in ANNOTATIONS} == ANNOTATIONS
    finally:
        provider.destroy(lambda _m: None)
    assert provider.status().state == "absent"
