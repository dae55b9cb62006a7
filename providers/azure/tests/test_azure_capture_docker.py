"""Capture with the real image: the deployment's data collector logs the real scoring
calls (the fake writes Azure's payload-logging lines to Azurite) and ``captured()`` reads
back the rows sent and the model's own predictions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy
import orjson
import pytest
from azure_fake import FakeAzureML
from azure_runtime import DockerRuntime
from azure_support import target_options
from azurite_support import azurite_blob
from docker_support import LocalRegistry
from tls_support import TLSCertificate

from deployer import Project
from deployer.providers import ProjectInfo, Release, Strategy, Target
from deployer.providers.monitoring import CaptureSpec
from deployer_azure.provider import AzureMLProvider

pytestmark = pytest.mark.docker
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture
def cloud(
    certificate: TLSCertificate,
    registry: LocalRegistry,
    docker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FakeAzureML]:
    runtime = DockerRuntime(docker, {"username": registry.username, "password": registry.password})
    fake = FakeAzureML(
        certificate, (registry.host, registry.username, registry.password), runtime=runtime
    )
    with azurite_blob() as connection:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
        fake.capture.connection = connection
        yield fake
        fake.close()


def test_captured_holds_the_rows_sent_and_the_models_predictions(
    cloud: FakeAzureML, iris_project: Project, iris_image: Any, docker: Any
) -> None:
    provider = AzureMLProvider(
        Target("azure", "azureml", target_options(cloud)), ProjectInfo("iris-test")
    )
    ref = provider.publish(iris_image, lambda _m: None)
    release = Release("iris-test", iris_image, ROWS, {}, capture=CaptureSpec(sample=1.0))
    deployment = provider.deploy(release, ref, Strategy.parse("all-at-once"), lambda _m: None)
    assert provider.wait(deployment, 300, lambda _m: None).healthy

    answer = provider.invoke(orjson.dumps({"instances": ROWS}), "application/json")
    assert answer.status == 200
    records = list(provider.captured())
    expected = iris_project.load_model().predict(numpy.array(ROWS), "predict", {}).tolist()
    named = [{str(i): v for i, v in enumerate(row)} for row in ROWS]
    assert [(r.rows, r.predictions) for r in records] == [(named, expected)] * len(records)
    assert len(records) == 2  # the smoke test and this call
    assert {r.version for r in records} == {release.version}
    assert all(r.extra["correlationid"] for r in records)

    provider.destroy(lambda _m: None)
    assert not docker.containers.list(all=True, filters={"label": "deployer-test=azure-fake"})
