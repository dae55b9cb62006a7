"""Release annotations: Azure tags on the version's online deployment (checked by the
fake against azure-ai-ml's REST models), shown again by status."""

from __future__ import annotations

import dataclasses
from typing import Any

from azure_fake import FakeAzureML
from azure_support import image_ref, release

from deployer.providers import Strategy
from deployer_azure import names

ANNOTATIONS = {
    "deployer-model-sha256": "0123456789abcdef0123456789abcdef",
    "deployer-pushed-by": "Ana Lopes <ana@example.com>",
    "deployer-git-commit": "a1b2c3d4e5f6",
    "deployer-release": "20261207T011500Z-3f2a",
}


def quiet(_message: str) -> None:
    return None


def push(provider: Any, fake: FakeAzureML, number: int, annotations: dict[str, str]) -> Any:
    rel = dataclasses.replace(release(number), annotations=annotations)
    deployment = provider.deploy(rel, image_ref(fake, number), Strategy.parse("all-at-once"), quiet)
    return provider.wait(deployment, 120, quiet)


def test_annotations_tag_the_deployment_and_status_shows_them(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    assert push(provider, fake, 1, ANNOTATIONS).healthy
    name = names.deployment_name(release(1).version)
    body = fake.requests_to("PUT", f"/deployments/{name}")[0].body
    assert {k: body["tags"][k] for k in ANNOTATIONS} == ANNOTATIONS
    assert provider.status().details["annotations"] == ANNOTATIONS

    assert push(provider, fake, 2, {**ANNOTATIONS, "deployer-release": "r2"}).healthy
    assert provider.status().details["annotations"]["deployer-release"] == "r2"


def test_a_release_without_annotations_shows_none(fake: FakeAzureML, make_provider: Any) -> None:
    provider = make_provider()
    assert push(provider, fake, 1, {}).healthy
    assert provider.status().details["annotations"] == {}


def test_long_values_are_cut_to_azures_limit() -> None:
    tags = names.annotation_tags({"deployer-pushed-by": "x" * 300, "a/b": "v"})
    assert tags == {"deployer-pushed-by": "x" * 256, "a_b": "v"}
