"""A CUDA image (label dev.deployer.accelerator: cuda) on Kubernetes: one nvidia.com/gpu
in the pod's limits, strictly valid manifests, a plan note, and a rollback that asks for
the GPU of the version it returns to. A CPU image renders as before."""

from __future__ import annotations

import dataclasses
from typing import Any

import kubernetes_validate
from k8s_support import VERSIONS, ProviderFactory, image_ref, quiet, release
from k8sfake import FakeKube

from deployer.providers import IMAGE_ACCELERATOR_LABEL, Release, Strategy

APPS = ("apps", "v1", "deployments")


def cuda(n: int) -> Release:
    base = release(n)
    labels = {**base.image.labels, IMAGE_ACCELERATOR_LABEL: "cuda"}
    return dataclasses.replace(base, image=dataclasses.replace(base.image, labels=labels))


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def deployment_of(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == "Deployment")


def test_a_cuda_image_asks_for_one_gpu_and_validates_strictly(
    make_provider: ProviderFactory,
) -> None:
    options = {"resources": {"limits": {"cpu": "2", "memory": "8Gi"}}}
    manifests = make_provider(**options).render(cuda(1))
    limits = container(deployment_of(manifests))["resources"]["limits"]
    assert limits == {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"}
    for manifest in manifests:
        for version in VERSIONS:
            assert kubernetes_validate.validate(manifest, version, strict=True) == version
    default = container(deployment_of(make_provider().render(cuda(1))))["resources"]["limits"]
    assert default["nvidia.com/gpu"] == "1"


def test_a_cpu_image_renders_as_before(make_provider: ProviderFactory) -> None:
    deployment = deployment_of(make_provider().render(release(1)))
    assert "nvidia.com/gpu" not in str(deployment)
    assert "deployer.dev/accelerator" not in deployment["metadata"]["annotations"]


def test_plan_notes_the_gpu_and_tolerations(make_provider: ProviderFactory) -> None:
    provider = make_provider()
    (note,) = provider.plan(cuda(1)).notes
    assert "nvidia.com/gpu: 1" in note and "toleration" in note
    assert provider.plan(release(1)).notes == []
    assert provider.plan(cuda(1)).ok  # a note, not a refusal


def _push(provider: Any, rel: Release, n: int) -> None:
    deployment = provider.deploy(rel, image_ref(n), Strategy.parse("all-at-once", 0), quiet)
    assert provider.wait(deployment, 120, quiet).healthy


def test_deploy_and_rollback_keep_each_versions_gpu(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    _push(provider, cuda(1), 1)
    live = fake.object(*APPS, "default", "iris-k8s")
    assert container(live)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    _push(provider, release(2), 2)
    live = fake.object(*APPS, "default", "iris-k8s")
    assert "nvidia.com/gpu" not in container(live)["resources"]["limits"]
    assert provider.rollback(quiet).version == release(1).version
    live = fake.object(*APPS, "default", "iris-k8s")
    assert container(live)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert provider.rollback(quiet).version == release(2).version
    live = fake.object(*APPS, "default", "iris-k8s")
    assert "nvidia.com/gpu" not in container(live)["resources"]["limits"]
