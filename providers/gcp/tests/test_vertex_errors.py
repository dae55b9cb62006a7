"""Credentials, permissions, throttling and transient errors, through the real SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import grpc
import pytest
from vertex_support import TOKEN, FakeCredentials, provider, push, release

from deployer.errors import EXIT_MISSING_DEPENDENCY, MissingDependencyError
from deployer_gcp.errors import VertexError

QUOTA = (
    "Quota exceeded for quota metric 'Resource management (CRUD) requests' and limit "
    "'Resource management (CRUD) requests per minute per region'."
)
DENIED = (
    "Permission 'aiplatform.endpoints.create' denied on resource "
    "'//aiplatform.googleapis.com/projects/demo-project/locations/us-central1' "
    "(or it may not exist)."
)


def test_throttling_is_retried_with_backoff(vertex, adc) -> None:
    vertex.fail("CreateEndpoint", grpc.StatusCode.RESOURCE_EXHAUSTED, QUOTA, times=2)
    vertex.fail("DeployModel", grpc.StatusCode.RESOURCE_EXHAUSTED, QUOTA, times=1)
    vertex.fail("GetOperation", grpc.StatusCode.RESOURCE_EXHAUSTED, QUOTA, times=1)
    target = provider(vertex.address)
    _, status, notes = push(target, release(1))
    assert status.healthy
    assert len(vertex.requests("CreateEndpoint")) == 3
    assert len(vertex.requests("DeployModel")) == 2
    retried = [n for n in notes if "RESOURCE_EXHAUSTED; retrying with backoff" in n]
    assert len(retried) == 4
    # google.api_core's exponential backoff (full jitter), bounded by retry_deadline.
    retry = target.api.retry
    assert (retry._initial, retry._multiplier, retry.timeout) == (0.05, 2.0, 5.0)


def test_transient_unavailability_is_retried(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    before = len(vertex.requests("RawPredict"))
    vertex.fail("ListEndpoints", grpc.StatusCode.UNAVAILABLE, "The service is unavailable.", 2)
    vertex.fail("RawPredict", grpc.StatusCode.UNAVAILABLE, "The service is unavailable.", 1)
    assert target.status().healthy
    assert target.invoke(b"[[0, 0, 0, 0]]", "application/json").status == 200
    assert len(vertex.requests("RawPredict")) == before + 2


def test_throttling_that_outlasts_the_retry_deadline_is_reported(vertex, adc) -> None:
    vertex.fail("ListEndpoints", grpc.StatusCode.RESOURCE_EXHAUSTED, QUOTA, times=1000)
    with pytest.raises(VertexError) as caught:
        provider(vertex.address, retry_deadline=0.3).status()
    message = str(caught.value)
    assert "could not list endpoints in projects/demo-project/locations/us-central1" in message
    assert "still throttled or unavailable after retrying" in message and QUOTA in message
    assert "retry_deadline" in message
    assert len(vertex.requests("ListEndpoints")) >= 2


def test_other_errors_are_not_retried(vertex, adc) -> None:
    vertex.fail("UploadModel", grpc.StatusCode.INVALID_ARGUMENT, "Invalid image URI.")
    with pytest.raises(VertexError, match=r"could not upload model .*INVALID_ARGUMENT: Invalid"):
        push(provider(vertex.address), release(1))
    assert len(vertex.requests("UploadModel")) == 1


def test_missing_permissions_name_the_action_and_resource(vertex, adc) -> None:
    vertex.fail("CreateEndpoint", grpc.StatusCode.PERMISSION_DENIED, DENIED)
    with pytest.raises(VertexError) as caught:
        push(provider(vertex.address), release(1))
    error = caught.value
    assert error.message.startswith(
        "permission denied: could not create endpoint iris-test-gcp in "
        "projects/demo-project/locations/us-central1 "
        "(missing permission aiplatform.endpoints.create)"
    )
    assert "roles/aiplatform.user" in (error.hint or "")
    assert len(vertex.requests("CreateEndpoint")) == 1


def test_permission_denied_on_predict_raises(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    denied = DENIED.replace("endpoints.create", "endpoints.predict")
    vertex.fail("RawPredict", grpc.StatusCode.PERMISSION_DENIED, denied)
    with pytest.raises(VertexError, match=r"missing permission aiplatform\.endpoints\.predict"):
        target.invoke(b"[[0, 0, 0, 0]]", "application/json")


def test_rejected_credentials_say_so_without_the_token(vertex, monkeypatch) -> None:
    import google.auth

    wrong = FakeCredentials("ya29.a-token-vertex-rejects")
    monkeypatch.setattr(google.auth, "default", lambda **_kw: (wrong, "demo-project"))
    with pytest.raises(MissingDependencyError) as caught:
        provider(vertex.address).status()
    text = f"{caught.value} {caught.value.hint}"
    assert "Google rejected the credentials while trying to list endpoints" in text
    assert "gcloud auth application-default login" in text
    assert "ya29" not in text and TOKEN not in text
    assert "ya29" not in repr(provider(vertex.address).options)


def test_missing_credentials_name_the_adc_chain(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    with pytest.raises(MissingDependencyError) as caught:
        provider("127.0.0.1:9").status()
    error = caught.value
    assert error.exit_code == EXIT_MISSING_DEPENDENCY
    assert "no Google Cloud credentials found; tried Application Default Credentials" in str(error)
    assert "missing-key.json was not found" in str(error)
    assert "gcloud auth application-default login" in (error.hint or "")


def test_no_credentials_anywhere_tries_the_whole_chain(tmp_path) -> None:
    """In a clean process: no key file, no gcloud config, no metadata server (a closed
    port on 127.0.0.1 stands in for it)."""
    from docker_support import free_port

    closed = f"127.0.0.1:{free_port()}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_"))
    }
    env.update(
        HOME=str(tmp_path),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        GCE_METADATA_HOST=closed,
        GCE_METADATA_IP=closed,
    )
    code = textwrap.dedent(
        """
        from deployer.errors import MissingDependencyError
        from deployer.providers import ProjectInfo, Target
        from deployer_gcp.provider import VertexProvider

        options = {"project": "demo-project", "region": "us-central1"}
        target = VertexProvider(Target("gcp", "vertex", options), ProjectInfo("iris"))
        try:
            target.status()
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert "no Google Cloud credentials found; tried Application Default Credentials: " in (
        result.stdout
    ), result.stderr
    assert "GOOGLE_APPLICATION_CREDENTIALS" in result.stdout
    assert "metadata server" in result.stdout
