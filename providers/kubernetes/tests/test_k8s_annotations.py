"""Release annotations: Kubernetes annotations (deployer.dev/...) on the version's
Deployment, applied through the fake API server (which checks objects against the
cluster's schemas), shown again by status."""

from __future__ import annotations

import dataclasses
from typing import Any

from k8s_support import ProviderFactory, image_ref, quiet, release
from k8sfake import FakeKube

from deployer.providers import Strategy

ANNOTATIONS = {
    "deployer-model-sha256": "0123456789abcdef0123456789abcdef",
    "deployer-pushed-by": "Ana Lopes <ana@example.com>",
    "deployer-git-commit": "a1b2c3d4e5f6",
    "deployer-release": "20261207T011500Z-3f2a",
}


def push(provider: Any, n: int, annotations: dict[str, str]) -> Any:
    rel = dataclasses.replace(release(n), annotations=annotations)
    deployment = provider.deploy(rel, image_ref(n), Strategy.parse("all-at-once"), quiet)
    return provider.wait(deployment, 120, quiet)


def test_annotations_go_on_the_deployment_and_status_shows_them(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    assert push(provider, 1, ANNOTATIONS).healthy
    live = fake.object("apps", "v1", "deployments", "default", "iris-k8s")
    written = live["metadata"]["annotations"]
    assert written["deployer.dev/model-sha256"] == ANNOTATIONS["deployer-model-sha256"]
    assert written["deployer.dev/pushed-by"] == ANNOTATIONS["deployer-pushed-by"]
    assert written["deployer.dev/git-commit"] == "a1b2c3d4e5f6"
    assert written["deployer.dev/release"] == ANNOTATIONS["deployer-release"]
    assert provider.status().details["annotations"] == ANNOTATIONS

    assert push(provider, 2, {**ANNOTATIONS, "deployer-release": "r2"}).healthy
    assert provider.status().details["annotations"]["deployer-release"] == "r2"


def test_a_release_without_annotations_shows_none(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    assert push(provider, 1, {}).healthy
    assert provider.status().details["annotations"] == {}


def test_pushing_the_live_version_again_changes_nothing(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    """Every push carries a new release id; the version already live keeps the
    annotations of the push that brought it, so a second identical push changes nothing."""
    provider = make_provider()
    assert push(provider, 1, ANNOTATIONS).healthy
    again = dataclasses.replace(release(1), annotations={**ANNOTATIONS, "deployer-release": "r9"})
    deployment = provider.deploy(again, image_ref(1), Strategy.parse("all-at-once"), quiet)
    assert not deployment.changed
    assert provider.status().details["annotations"] == ANNOTATIONS
