"""With Docker: the registry push through the real docker client to a real registry, and the
whole ``Project.push`` flow against the fake API server whose pods run the real image
(pulled from that registry, with the pod's restricted security context)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from docker_support import LocalRegistry
from k8s_support import ADMIN_TOKEN, ProviderFactory, quiet
from k8sfake import DockerRuntime, FakeKube

from deployer import Project
from deployer.errors import MissingDependencyError
from deployer.providers.monitoring import CaptureSpec

pytestmark = pytest.mark.docker
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture
def registry_env(registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("K8S_TEST_REGISTRY_USER", registry.username)
    monkeypatch.setenv("K8S_TEST_REGISTRY_TOKEN", registry.password)
    return {
        "registry_username_env": "K8S_TEST_REGISTRY_USER",
        "registry_password_env": "K8S_TEST_REGISTRY_TOKEN",
    }


def test_publish_pushes_with_credentials_named_by_env_vars(
    make_provider: ProviderFactory,
    registry: LocalRegistry,
    registry_env: dict[str, str],
    iris_image: Any,
    docker: Any,
) -> None:
    provider = make_provider(registry=f"{registry.host}/iris", **registry_env)
    lines: list[str] = []
    ref = provider.publish(iris_image, lines.append)
    assert ref.startswith(f"{registry.host}/iris@sha256:")
    assert provider.publish(iris_image, quiet) == ref  # re-publishing is cheap and stable
    pulled = docker.images.pull(
        ref, auth_config={"username": registry.username, "password": registry.password}
    )
    assert pulled.id == iris_image.id
    assert not any(registry.password in line for line in lines)


def test_publish_without_credentials_names_what_was_tried(
    make_provider: ProviderFactory, registry: LocalRegistry, iris_image: Any
) -> None:
    provider = make_provider(registry=f"{registry.host}/iris")
    with pytest.raises(MissingDependencyError) as caught:
        provider.publish(iris_image, quiet)
    message = str(caught.value)
    assert "registry_username_env/registry_password_env (unset)" in message
    assert "Docker engine's own credentials" in message


def test_publish_with_an_unset_credential_variable(
    make_provider: ProviderFactory,
    registry: LocalRegistry,
    iris_image: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("K8S_TEST_MISSING_TOKEN", raising=False)
    monkeypatch.setenv("K8S_TEST_REGISTRY_USER", "someone")
    provider = make_provider(
        registry=f"{registry.host}/iris",
        registry_username_env="K8S_TEST_REGISTRY_USER",
        registry_password_env="K8S_TEST_MISSING_TOKEN",
    )
    with pytest.raises(MissingDependencyError, match=r"\$K8S_TEST_MISSING_TOKEN is not set"):
        provider.publish(iris_image, quiet)


def test_project_push_serves_the_real_model_through_the_service_proxy(
    docker_fake: FakeKube,
    registry: LocalRegistry,
    registry_env: dict[str, str],
    iris_project: Project,
    iris_image: Any,
    tmp_path: Path,
) -> None:
    kubeconfig = docker_fake.kubeconfig(tmp_path / "kubeconfig", token=ADMIN_TOKEN)
    file = iris_project.root / "deployer-k8s.yaml"  # same folder and model: the same image
    file.write_text(
        f"name: {iris_project.name}\nmodel:\n  path: model.joblib\n"
        "targets:\n  k8s:\n    provider: kubernetes\n"
        f"    kubeconfig: {kubeconfig}\n    context: fake\n    namespace: default\n"
        f"    registry: {registry.host}/iris\n"
        f"    registry_username_env: {registry_env['registry_username_env']}\n"
        f"    registry_password_env: {registry_env['registry_password_env']}\n"
        "    replicas: 1\n    poll_interval: 0.1\n"
        "monitoring:\n  capture:\n    sample: 1.0\n    redact: {hash: [x0]}\n"
    )
    project = Project.load(file)
    events: list[str] = []
    result = project.push(
        ["k8s"], events=lambda _t, message: events.append(message), journal_dir=None
    )
    target = result.targets[0]
    assert result.ok, f"{target.error}\n" + "\n".join(events)
    print("\n".join(f"{e.seconds:7.2f} {e.step} {e.detail}" for e in result.journal))
    assert target.version == iris_image.version
    assert any(e.step == "smoke test passed" and e.detail == "2 rows" for e in result.journal)
    assert target.url == "http://iris-test-k8s.default.svc.cluster.local"

    answer = project.predict("k8s", json.dumps(ROWS).encode())
    expected = project.load_model().predict(np.array(ROWS), "predict", {}).tolist()
    assert answer.status == 200 and json.loads(answer.body) == {"predictions": expected}
    live = docker_fake.object("apps", "v1", "deployments", "default", "iris-test-k8s")
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(f"{registry.host}/iris@sha256:")
    assert project.status(["k8s"])[0].healthy
    # the real container ran under the pod's restricted security context
    (container,) = docker_fake.runtime.containers  # type: ignore[attr-defined]
    config = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == "10001:10001"
    assert config["ReadonlyRootfs"] is True and config["CapDrop"] == ["ALL"]
    # monitoring.capture reached the real container as the image's own setting, and the
    # pod log API serves the real container's output (what captured() reads)
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    spec = CaptureSpec.from_env(env)
    assert spec is not None and (spec.sample, spec.destination, spec.hash) == (
        1.0,
        "stdout",
        ("x0",),
    )
    pods = docker_fake.objects("", "v1", "pods", "default")
    runtime = docker_fake.runtime
    assert isinstance(runtime, DockerRuntime) and runtime.logs(
        image, pods[0]["metadata"]["name"], None
    )
    k8s: Any = project.providers(["k8s"])["k8s"]
    records = list(k8s.captured())
    assert k8s.captured_skipped == 0
    if image_captures():  # the image's own capture (deployer.serving) is in this checkout
        for _ in range(200):  # the image writes off the request path: wait for the lines
            records = records or list(k8s.captured())
            if records:
                break
            time.sleep(0.05)
        assert records and all(len(r.rows[0]) == 4 for r in records if r.rows)

    again = project.push(["k8s"], journal_dir=None)
    assert again.ok and not again.targets[0].changed
    removed = project.destroy(["k8s"])["k8s"]
    assert "deployment/iris-test-k8s" in removed and "service/iris-test-k8s" in removed
    assert project.status(["k8s"])[0].state == "absent"


def image_captures() -> bool:
    """Whether the serving code this image was built from writes capture records."""
    import deployer.serving

    folder = Path(deployer.serving.__file__).parent
    return any("CAPTURE_STDOUT_PREFIX" in f.read_text() for f in folder.rglob("*.py"))
