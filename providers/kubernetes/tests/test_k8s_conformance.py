"""The provider conformance kit (deployer.providers.testing) against the fake API server."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from k8s_support import ADMIN_TOKEN
from k8sfake import FakeKube

from deployer.providers import ProjectInfo, Release, Target, testing
from deployer_kubernetes.provider import KubernetesProvider

# What the controllers make from what deployer applies (pods come and go on their own).
DERIVED = {"pods", "replicasets", "endpoints", "endpointslices", "events", "controllerrevisions"}


def image_ref(release: Release) -> str:
    digest = hashlib.sha256(f"img-{release.version}".encode()).hexdigest()
    return f"registry.test/{release.project}@sha256:{digest}"


@pytest.fixture
def rig(fake: FakeKube, kubeconfig: Path) -> testing.Rig:
    def make(project: str, target: str) -> KubernetesProvider:
        options = {
            "provider": "kubernetes",
            "kubeconfig": str(kubeconfig),
            "context": "fake",
            "poll_interval": 0.05,
            "retry_backoff": 0.01,
        }
        return KubernetesProvider(Target(target, "kubernetes", options), ProjectInfo(project))

    def inventory() -> dict[str, dict[str, str]]:
        store = fake.store
        with store.lock:
            return {
                f"{store.kinds[key].plural} {'/'.join(map(str, key))}": dict(
                    obj["metadata"].get("labels") or {}
                )
                for key, obj in store.objects.items()
                if store.kinds[key].plural not in DERIVED
            }

    return testing.Rig(
        make=make,
        image_ref=image_ref,
        inventory=inventory,
        writes=lambda: [f"{r.method} {r.path}" for r in fake.writes()],
        fail_deploy=lambda release, ref: fake.fail_image(ref, "ImagePullBackOff"),
        secrets=lambda: [ADMIN_TOKEN],
    )


@pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
def test_conformance(rig: testing.Rig, check: Any) -> None:
    testing.run(check, rig)
