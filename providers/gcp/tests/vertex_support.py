"""Constants, test credentials and small builders shared by the Vertex provider tests."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import google.auth._helpers
import google.auth.credentials

from deployer.image.build import Image
from deployer.providers import ProjectInfo, Release, Strategy, Target
from deployer_gcp.provider import VertexProvider

PROJECT_ID = "demo-project"
REGION = "us-central1"
TOKEN = "ya29.test-token-for-the-fake"
REGISTRY_USER = "oauth2accesstoken"


class FakeCredentials(google.auth.credentials.Credentials):  # type: ignore[misc]
    """What google.auth.default() returns in tests: refresh() mints ``token``."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._minted = token
        self.refreshes = 0
        self.calls: list[dict[str, Any]] = []

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = self._minted
        self.expiry = google.auth._helpers.utcnow() + datetime.timedelta(hours=1)


PROJECT = "iris-test"
TARGET = "gcp"


def options(address: str, **overrides: Any) -> dict[str, Any]:
    """Target options pointing the real SDK at the fake, polling fast."""
    return {
        "provider": "vertex",
        "project": "demo-project",
        "region": "us-central1",
        "api_endpoint": address,
        "registry": "127.0.0.1:1/unused",
        "poll_interval": 0.02,
        "retry_initial_delay": 0.05,
        "retry_deadline": 5.0,
        **overrides,
    }


def provider(address: str, target: str = TARGET, **overrides: Any) -> VertexProvider:
    return VertexProvider(
        Target(target, "vertex", options(address, **overrides)), ProjectInfo(PROJECT)
    )


def release(n: int) -> Release:
    """Release number ``n``: a distinct image id and model digest, so a distinct version."""
    image_id = "sha256:" + hashlib.sha256(f"image-{n}".encode()).hexdigest()
    model = hashlib.sha256(f"model-{n}".encode()).hexdigest()
    image = Image(f"{PROJECT}:{n}", image_id, 1, {"dev.deployer.model.sha256": model})
    return Release(PROJECT, image, [[0, 0, 0, 0], [0, 0, 0, 0]], {"width": 4})


def push(
    vertex_provider: VertexProvider,
    rel: Release,
    strategy: str = "all-at-once",
    timeout: float = 120.0,
    bake: float = 0.0,
) -> tuple[Any, Any, list[str]]:
    """deploy + wait, as the orchestrator does; returns (deployment, status, progress)."""
    notes: list[str] = []
    deployment = vertex_provider.deploy(
        rel,
        f"127.0.0.1:1/unused/{PROJECT}@sha256:{'0' * 64}",
        Strategy.parse(strategy, bake),
        notes.append,
    )
    status = vertex_provider.wait(deployment, timeout, notes.append)
    return deployment, status, notes
