"""The provider conformance kit (deployer.providers.testing) against the fake Azure ML."""

from __future__ import annotations

from typing import Any

import pytest
from azure_fake import TOKEN, FakeAzureML
from azure_support import FakeCredential, target_options

from deployer.providers import ProjectInfo, Release, Target, testing
from deployer_azure import names
from deployer_azure.provider import AzureMLProvider


@pytest.fixture
def rig(fake: FakeAzureML, credential: FakeCredential) -> testing.Rig:
    def make(project: str, target: str) -> AzureMLProvider:
        return AzureMLProvider(
            Target(target, "azureml", target_options(fake)), ProjectInfo(project)
        )

    def inventory() -> dict[str, dict[str, str]]:
        with fake.lock:
            held = {f"endpoint {k}": dict(v["tags"]) for k, v in fake.endpoints.items()}
            for (endpoint, deployment), value in fake.deployments.items():
                held[f"deployment {endpoint}/{deployment}"] = dict(value["tags"])
        return held

    def fail_deploy(release: Release, ref: str) -> None:
        name = names.deployment_name(release.version)
        fake.fail_deployment(name, "User container has crashed or terminated: exit code 3")

    def secrets() -> list[str]:
        with fake.lock:
            keys = [key for pair in fake.keys.values() for key in pair]
            tokens = [token for issued in fake.tokens.values() for token in issued]
        return [TOKEN, *keys, *tokens, *credential.entra_tokens]

    return testing.Rig(
        make=make,
        image_ref=lambda rel: f"{fake.registry_host}/{rel.project}@{rel.image.id}",
        inventory=inventory,
        writes=lambda: [
            f"{r.method} {r.path}" for r in fake.requests if r.method in ("PUT", "PATCH", "DELETE")
        ],
        fail_deploy=fail_deploy,
        secrets=secrets,
    )


@pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
def test_conformance(rig: testing.Rig, check: Any) -> None:
    testing.run(check, rig)
