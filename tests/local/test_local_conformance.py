"""The provider conformance kit (deployer.providers.testing) against the local provider, on
the real Docker engine: releases are the iris image and images derived from it (another
id, so another version); a failing deploy is an image whose server exits at start."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from docker_support import BASE_IMAGE, free_port

from deployer.image.build import Image
from deployer.local import LocalProvider
from deployer.providers import ProjectInfo, Release, Target, testing

pytestmark = pytest.mark.docker
REPOSITORY = "deployer-kit-local"
OWNED = {"label": "deployer-project"}


@pytest.fixture
def rig(docker: Any, iris_image: Any) -> Iterator[testing.Rig]:
    ports: dict[tuple[str, str], int] = {}
    images: dict[str, Image] = {}
    failing: set[str] = set()
    made: list[LocalProvider] = []

    def derived(tag: str, dockerfile: str) -> Image:
        built, _ = docker.images.build(
            fileobj=io.BytesIO(f"FROM {iris_image.id}\n{dockerfile}\n".encode()),
            tag=f"{REPOSITORY}:{tag}",
            rm=True,
        )
        return Image(f"{REPOSITORY}:{tag}", built.id, built.attrs["Size"], iris_image.labels)

    def release(seed: str, project: str) -> Release:
        if seed not in images:
            images[seed] = derived(seed, f"LABEL dev.deployer.kit={seed}")
        return Release(project, images[seed], [[5.1, 3.5, 1.4, 0.2]], {"width": 4})

    def image_ref(rel: Release) -> str:
        if rel.version in failing:
            return derived(f"broken-{rel.image.id[7:19]}", 'ENTRYPOINT ["false"]').id
        return rel.image.id

    def make(project: str, target: str) -> LocalProvider:
        port = ports.setdefault((project, target), free_port())
        options = {"port": port, "startup_timeout": 120}
        provider = LocalProvider(
            Target(target, "local", options), ProjectInfo(project, base_image=BASE_IMAGE)
        )
        made.append(provider)
        return provider

    def inventory() -> dict[str, dict[str, str]]:
        held = {f"container {c.name}": dict(c.labels) for c in _ours(docker)}
        for network in docker.networks.list(filters=OWNED):
            held[f"network {network.name}"] = dict(network.attrs["Labels"] or {})
        return held

    def engine_state() -> list[str]:
        """No request log here: the engine's containers (ids and states) stand for what
        was written."""
        return sorted(f"{c.name} {c.id} {c.status}" for c in _ours(docker))

    yield testing.Rig(
        make=make,
        image_ref=image_ref,
        inventory=inventory,
        writes=engine_state,
        fail_deploy=lambda rel, ref: failing.add(rel.version),
        secrets=list,
        release=release,
        skip={"credentials_stay_out_of_output": "the local target uses no credentials"},
    )
    for provider in made:
        provider.destroy(lambda _m: None)
    for image in docker.images.list(name=REPOSITORY):
        docker.images.remove(image.id, force=True)


def _ours(docker: Any) -> list[Any]:
    return [
        c
        for c in docker.containers.list(all=True, filters=OWNED)
        if c.labels.get("deployer-project") in (testing.PROJECT, testing.OTHER_PROJECT)
    ]


@pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
def test_conformance(rig: testing.Rig, check: Any) -> None:
    testing.run(check, rig)
