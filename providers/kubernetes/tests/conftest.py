"""Fixtures: a fake API server per test, driven through the real kubernetes client by a
kubeconfig that points at it, and providers and releases to deploy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import LocalRegistry
from k8s_support import ADMIN_TOKEN, ProviderFactory
from k8sfake import DockerRuntime, FakeKube

from deployer.providers import ProjectInfo, Target
from deployer_kubernetes.provider import KubernetesProvider


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    server = FakeKube()
    server.add_user(ADMIN_TOKEN, "admin")
    yield server
    server.close()


@pytest.fixture
def docker_fake(docker: Any, registry: LocalRegistry) -> Iterator[FakeKube]:
    """A fake API server whose pods are real containers (images from the test registry)."""
    runtime = DockerRuntime(docker, {"username": registry.username, "password": registry.password})
    server = FakeKube(runtime)
    server.add_user(ADMIN_TOKEN, "admin")
    yield server
    server.close()


@pytest.fixture
def kubeconfig(fake: FakeKube, tmp_path: Path) -> Path:
    return fake.kubeconfig(tmp_path / "kubeconfig", token=ADMIN_TOKEN)


@pytest.fixture
def make_provider(kubeconfig: Path) -> ProviderFactory:
    """``make_provider(**options)``: a provider for target ``k8s`` of project ``iris``."""

    def make(target: str = "k8s", project: str = "iris", **options: Any) -> KubernetesProvider:
        merged = {
            "provider": "kubernetes",
            "kubeconfig": str(kubeconfig),
            "context": "fake",
            "poll_interval": 0.05,
            "retry_backoff": 0.01,
            **options,
        }
        return KubernetesProvider(Target(target, "kubernetes", merged), ProjectInfo(project))

    return make
