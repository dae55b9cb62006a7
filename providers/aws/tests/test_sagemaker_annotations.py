"""Release annotations: SageMaker tags on the version's model and endpoint config
(sanitised to SageMaker's tag rules), shown again by status."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_fake import FakeAws
from aws_support import Recorder, image_ref, release

from deployer.providers import Strategy
from deployer_aws import names

ANNOTATIONS = {
    "deployer-model-sha256": "0123456789abcdef0123456789abcdef",
    "deployer-pushed-by": "Ana Lopes <ana@example.com> (ci#42)",
    "deployer-git-commit": "a1b2c3d4e5f6",
    "deployer-release": "20261207T011500Z-3f2a",
}
CLEAN = {**ANNOTATIONS, "deployer-pushed-by": "Ana Lopes _ana@example.com_ _ci_42_"}


def push(provider: Any, rel: Any, progress: Recorder) -> Any:
    deployment = provider.deploy(rel, image_ref(rel), Strategy.parse("all-at-once"), progress)
    return provider.wait(deployment, 120, progress)


def test_annotations_tag_the_version_and_status_shows_them(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider()
    first = dataclasses.replace(release("one"), annotations=ANNOTATIONS)
    assert push(p, first, progress).healthy
    for call in (*fake.calls("CreateModel"), *fake.calls("CreateEndpointConfig")):
        tags = names.tag_map(call["Tags"])
        assert {k: tags[k] for k in CLEAN} == CLEAN
    assert p.status().details["annotations"] == CLEAN

    second = dataclasses.replace(
        release("two"), annotations={**ANNOTATIONS, "deployer-release": "r2"}
    )
    assert push(p, second, progress).healthy
    assert p.status().details["annotations"]["deployer-release"] == "r2"


def test_a_release_without_annotations_shows_none(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider()
    assert push(p, release("one"), progress).healthy
    assert p.status().details["annotations"] == {}
