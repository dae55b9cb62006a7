"""The provider conformance kit (deployer.providers.testing) against the fake Vertex AI."""

from __future__ import annotations

from typing import Any

import pytest
from vertex_fake import FakeVertex
from vertex_support import TOKEN, options

from deployer.providers import ProjectInfo, Release, Target, testing
from deployer_gcp.provider import VertexProvider

WRITES = {
    "CreateEndpoint",
    "UpdateEndpoint",
    "DeleteEndpoint",
    "UploadModel",
    "DeleteModel",
    "DeployModel",
    "UndeployModel",
}


@pytest.fixture
def rig(vertex: FakeVertex, adc: Any) -> testing.Rig:
    def make(project: str, target: str) -> VertexProvider:
        return VertexProvider(
            Target(target, "vertex", options(vertex.address)), ProjectInfo(project)
        )

    def inventory() -> dict[str, dict[str, str]]:
        with vertex.lock:
            held = {f"model {k}": dict(m.labels) for k, m in vertex.models.items()}
            for key, endpoint in vertex.endpoints.items():
                held[f"endpoint {key}"] = dict(endpoint.labels)
                for deployed in endpoint.deployed_models:
                    held[f"deployed model {key}/{deployed.id}"] = dict(endpoint.labels)
        return held

    def fail_deploy(release: Release, ref: str) -> None:
        vertex.fail_deploy("Model server never became ready.")

    return testing.Rig(
        make=make,
        image_ref=lambda rel: f"127.0.0.1:1/unused/{rel.project}@{rel.image.id}",
        inventory=inventory,
        writes=lambda: [name for name, _, _ in list(vertex.calls) if name in WRITES],
        fail_deploy=fail_deploy,
        secrets=lambda: [TOKEN],
    )


@pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
def test_conformance(rig: testing.Rig, check: Any) -> None:
    testing.run(check, rig)
