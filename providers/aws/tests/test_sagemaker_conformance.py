"""The provider conformance kit (deployer.providers.testing) against the fake AWS."""

from __future__ import annotations

from typing import Any

import pytest
from aws_fake import FakeAws, Script
from aws_support import image_ref

from deployer.providers import ProjectInfo, Release, Target, testing
from deployer_aws import names

SECRET_KEY = "kit-secret-access-key-7d1c0e"
SESSION_TOKEN = "kit-session-token-4b92aa"
READS = ("Describe", "List", "Get")


@pytest.fixture
def rig(fake: FakeAws, monkeypatch: pytest.MonkeyPatch) -> testing.Rig:
    from deployer_aws.provider import SageMakerProvider

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)

    def make(project: str, target: str) -> SageMakerProvider:
        return SageMakerProvider(Target(target, "sagemaker", fake.options()), ProjectInfo(project))

    def inventory() -> dict[str, dict[str, str]]:
        sagemaker = fake.sagemaker
        held = {}
        for kind, objects in (
            ("endpoint", sagemaker.endpoints),
            ("endpoint-config", sagemaker.endpoint_configs),
            ("model", sagemaker._models),
        ):
            for name, obj in objects.items():
                held[f"{kind} {name}"] = names.tag_map(obj.tags)
        return held

    def fail_deploy(release: Release, ref: str) -> None:
        # SageMaker rolls a failed update back by itself: the old config keeps serving
        fake.script_update(Script(["Updating"], "rollback", "the new variant failed its ping"))

    return testing.Rig(
        make=make,
        image_ref=image_ref,
        inventory=inventory,
        writes=lambda: [r.operation for r in fake.requests if not r.operation.startswith(READS)],
        fail_deploy=fail_deploy,
        secrets=lambda: [SECRET_KEY, SESSION_TOKEN],
    )


@pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
def test_conformance(rig: testing.Rig, check: Any) -> None:
    testing.run(check, rig)
