"""The registry push and the whole push flow with real Docker, a real registry and a real
container of the image behind the fake endpoint's scoring URI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy
import orjson
import pytest
from azure_fake import FakeAzureML
from azure_runtime import DockerRuntime
from azure_support import target_options
from docker_support import LocalRegistry
from tls_support import TLSCertificate

from deployer import Project
from deployer.providers import ProjectInfo, Target
from deployer_azure.provider import AzureMLProvider

pytestmark = pytest.mark.docker
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture
def cloud(
    certificate: TLSCertificate, registry: LocalRegistry, docker: Any
) -> Iterator[FakeAzureML]:
    """The fake Azure ML whose workspace registry is the local registry, running containers."""
    runtime = DockerRuntime(docker, {"username": registry.username, "password": registry.password})
    fake = FakeAzureML(
        certificate, (registry.host, registry.username, registry.password), runtime=runtime
    )
    yield fake
    fake.close()


def test_publish_pushes_to_the_workspace_registry_with_its_credentials(
    cloud: FakeAzureML, registry: LocalRegistry, iris_image: Any
) -> None:
    provider = AzureMLProvider(
        Target("azure", "azureml", target_options(cloud)), ProjectInfo("iris-test")
    )
    messages: list[str] = []
    ref = provider.publish(iris_image, messages.append)
    repository, digest = ref.split("@")
    assert repository == f"{registry.host}/iris-test" and digest.startswith("sha256:")
    assert any("admin credentials" in m for m in messages)
    manifest = httpx.get(
        f"http://{registry.host}/v2/iris-test/manifests/{iris_image.version}",
        auth=(registry.username, registry.password),
        headers={"accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.status_code == 200
    assert manifest.headers["docker-content-digest"] == digest
    assert cloud.requests_to("POST", "/listKeys")  # credentials came from the workspace keys
    assert provider.publish(iris_image, messages.append) == ref  # cheap and stable


def test_push_flow_serves_the_real_model_behind_the_scoring_uri(
    cloud: FakeAzureML, iris_project: Project, iris_image: Any, docker: Any
) -> None:
    """Project.push with an azureml target in deployer.yaml (beside the iris project's own
    file, so the build reuses its image)."""
    options = target_options(cloud, poll_interval=0.05, instance_count=2)
    lines = [f"    {key}: {value}" for key, value in options.items()]
    file = iris_project.root / "deployer-azure.yaml"
    file.write_text(
        "name: iris-test\nmodel:\n  path: model.joblib\ntargets:\n  azure:\n"
        + "\n".join(lines)
        + "\n"
    )
    project = Project.load(file)
    events: list[str] = []
    result = project.push(
        ["azure"], events=lambda _t, message: events.append(message), journal_dir=None
    )
    outcome = result.targets[0]
    assert result.ok, (outcome.error, events)
    assert outcome.changed and outcome.previous_version is None
    assert outcome.version == iris_image.version
    assert outcome.url == f"{cloud.scoring_url}/iris-test-azure/score"
    assert any(e.startswith("smoke test passed") for e in events), "\n".join(events)
    assert any(f"traffic: v{outcome.version} 100%" in e for e in events), events
    created = next(r for r in cloud.requests if r.method == "PUT" and "/deployments/" in r.path)
    assert created.body["sku"]["capacity"] == 2

    answer = project.predict("azure", orjson.dumps(ROWS))
    expected = project.load_model().predict(numpy.array(ROWS), "predict", {}).tolist()
    assert answer.status == 200 and orjson.loads(answer.body) == {"predictions": expected}
    containers = docker.containers.list(filters={"label": "deployer-test=azure-fake"})
    assert len(containers) == 1 and containers[0].name.startswith("azfake-iris-test-azure-v")

    again = project.push(["azure"], journal_dir=None)
    assert again.ok and not again.targets[0].changed

    assert project.destroy(["azure"])["azure"][-1] == "endpoint iris-test-azure"
    assert not docker.containers.list(all=True, filters={"label": "deployer-test=azure-fake"})
