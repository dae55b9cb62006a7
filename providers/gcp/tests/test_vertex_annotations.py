"""Release annotations: labels on the version's Model (lowercased to Google's label
rules, which the fake enforces), shown again by status."""

from __future__ import annotations

import dataclasses

from vertex_support import provider, push, release

from deployer_gcp import names

ANNOTATIONS = {
    "deployer-model-sha256": "0123456789abcdef0123456789abcdef",
    "deployer-pushed-by": "Ana Lopes <ana@example.com>",
    "deployer-git-commit": "a1b2c3d4e5f6",
    "deployer-release": "20261207T011500Z-3f2a",
}


def test_annotations_label_the_model_and_status_shows_them(vertex, adc) -> None:
    target = provider(vertex.address)
    rel = dataclasses.replace(release(1), annotations=ANNOTATIONS)
    _, status, _ = push(target, rel)
    assert status.healthy
    expected = {key: names.label_value(value) for key, value in ANNOTATIONS.items()}
    assert expected["deployer-model-sha256"] == ANNOTATIONS["deployer-model-sha256"]
    assert expected["deployer-pushed-by"].startswith("ana-lopes-ana-example-com-")
    (model,) = vertex.models.values()
    assert {k: model.labels[k] for k in expected} == expected
    assert target.status().details["annotations"] == expected

    second = dataclasses.replace(release(2), annotations={**ANNOTATIONS, "deployer-release": "r2"})
    assert push(target, second)[1].healthy
    assert target.status().details["annotations"]["deployer-release"] == "r2"


def test_a_release_without_annotations_shows_none(vertex, adc) -> None:
    target = provider(vertex.address)
    assert push(target, release(1))[1].healthy
    assert target.status().details["annotations"] == {}


def test_the_fake_refuses_labels_google_would_refuse(vertex, adc) -> None:
    """What makes the test above mean something: unsanitised values fail the upload."""
    import pytest

    from deployer.errors import DeployerError

    target = provider(vertex.address)
    raw = dict(names.version_labels("iris-test", "gcp", "v"), **{"deployer-pushed-by": "Ana L"})
    with pytest.raises(DeployerError, match="invalid label"):
        target.scope.api.upload_model(
            "m", "127.0.0.1:1/x@sha256:" + "0" * 64, raw, "/", "/", {}, 8080
        )
