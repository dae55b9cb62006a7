"""Helpers shared by the kubernetes provider's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from deployer.image.build import Image
from deployer.providers import Release

# make_provider(target="k8s", project="iris", **options) -> KubernetesProvider
ProviderFactory = Callable[..., Any]

SAMPLE = [[0, 0, 0, 0], [0, 0, 0, 0]]
ADMIN_TOKEN = "admin-token-for-tests"
VERSIONS = ["1.29", "1.30", "1.31", "1.32", "1.33"]


def release(n: int | str, project: str = "iris") -> Release:
    """A release whose version is derived from ``n`` (no image is built)."""
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    image = Image(f"{project}:{n}", f"sha256:{digest}", 1, {"dev.deployer.model.sha256": digest})
    return Release(project, image, SAMPLE, {})


def image_ref(n: int | str) -> str:
    return f"registry.test/iris@sha256:{hashlib.sha256(f'img{n}'.encode()).hexdigest()}"


def collect(lines: list[str]) -> Callable[[str], None]:
    return lines.append


def quiet(_message: str) -> None:
    pass
