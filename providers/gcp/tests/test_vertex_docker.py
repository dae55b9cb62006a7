"""Real Docker: the push to an Artifact-Registry-like registry with a Google token, and the
whole ``Project.push`` flow, the fake Vertex serving the pushed image from a container."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_support import remove_repository
from vertex_runtime import DockerRuntime
from vertex_support import REGISTRY_USER, TOKEN, FakeCredentials, provider

from deployer.errors import DeployerError

pytestmark = pytest.mark.docker


def test_publish_pushes_with_a_google_access_token(
    vertex, adc, docker: Any, iris_image: Any, gcp_registry: Any
) -> None:
    registry = f"{gcp_registry.host}/demo-project/deployer"
    target = provider(vertex.address, registry=registry)
    notes: list[str] = []
    ref = target.publish(iris_image, notes.append)
    assert ref.startswith(f"{registry}/iris-test@sha256:")
    assert adc.refreshes == 1  # a fresh token from ADC, used as the registry password
    tags = httpx.get(
        f"http://{gcp_registry.host}/v2/demo-project/deployer/iris-test/tags/list",
        auth=(REGISTRY_USER, TOKEN),
    ).json()
    assert tags["tags"] == [iris_image.version]
    assert any("layer(s) in the registry" in n for n in notes)
    # Publishing the same image again is cheap and gives the same ref.
    assert target.publish(iris_image, notes.append) == ref
    assert adc.refreshes == 1  # the token was still valid
    # No docker config was written.
    assert not (Path.home() / ".docker" / "config.json").exists() or (
        gcp_registry.host not in (Path.home() / ".docker" / "config.json").read_text()
    )


def test_a_rejected_token_names_the_fix_and_never_the_token(
    vertex, monkeypatch, docker: Any, iris_image: Any, gcp_registry: Any
) -> None:
    import google.auth

    secret = "ya29.not-accepted-by-the-registry"
    monkeypatch.setattr(
        google.auth, "default", lambda **_kw: (FakeCredentials(secret), "demo-project")
    )
    target = provider(vertex.address, registry=f"{gcp_registry.host}/demo-project/deployer")
    with pytest.raises(DeployerError) as caught:
        target.publish(iris_image, lambda _m: None)
    text = f"{caught.value}"
    assert secret not in text
    assert "push of" in text and "roles/artifactregistry.writer" in text


def test_project_push_to_vertex_serves_the_real_model(
    vertex, adc, docker: Any, gcp_registry: Any, iris_model_file: Path, tmp_path: Path
) -> None:
    from deployer import Project

    shutil.copy(iris_model_file, tmp_path / "model.joblib")
    (tmp_path / "deployer.yaml").write_text(
        "name: iris-gcp\nmodel:\n  path: model.joblib\ntargets:\n  gcp:\n"
        "    provider: vertex\n    project: demo-project\n    region: us-central1\n"
        f"    registry: {gcp_registry.host}/demo-project/deployer\n"
        f"    api_endpoint: '{vertex.address}'\n"
        "    machine_type: n1-standard-2\n    min_replicas: 1\n    max_replicas: 3\n"
        "    poll_interval: 0.05\n    retry_initial_delay: 0.05\n"
    )
    runtime = DockerRuntime(docker, {"username": REGISTRY_USER, "password": TOKEN})
    vertex.runtime = runtime
    project = Project.load(tmp_path / "deployer.yaml")
    try:
        result = project.push(["gcp"], timeout=180, journal_dir=None)
        (outcome,) = result.targets
        assert result.ok, outcome.error
        assert outcome.changed and outcome.version == result.version
        assert outcome.url and outcome.url.endswith(":rawPredict")
        journal = [(e.step, e.detail) for e in result.journal if e.target == "gcp"]
        assert ("smoke test passed", "2 rows") in journal
        # The fake ran the image from the registry with Vertex's routes and variables.
        (model,) = vertex.models.values()
        assert model.container_spec.image_uri.startswith(
            f"{gcp_registry.host}/demo-project/deployer/iris-gcp@sha256:"
        )
        answer = project.predict("gcp", b"[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]")
        assert answer.status == 200
        assert json.loads(answer.body) == {"predictions": [0, 2]}
        # Pushing the same release again changes nothing.
        again = project.push(["gcp"], strategy="canary:10", timeout=60, journal_dir=None)
        assert again.ok and not again.targets[0].changed
        (status,) = project.status(["gcp"])
        assert status.healthy and status.version == result.version
        removed = project.destroy(["gcp"])["gcp"]
        assert [r.split()[0] for r in removed] == ["deployed", "endpoint", "model"]
        assert not runtime.running
    finally:
        runtime.close()
        remove_repository(docker, "iris-gcp")  # the image the push built
