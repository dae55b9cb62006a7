"""A batch job runs the real image: the fake batch endpoint runs the deployment's
scoring script (the image's driver, deployer.serving.azure_batch, over the in-image
batch runner) in a container as Azure's batch driver does, on the real input files
from Azurite; its predictions equal the model's own, and a file with a row the model
cannot take fails the job with the file named, its rows in the job's logs."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy
import pytest
from azure_batch_runtime import DockerBatchRuntime
from azure_fake import FakeAzureML
from azure_support import target_options
from azurite_support import ACCOUNT, azurite_blob
from docker_support import LocalRegistry
from tls_support import TLSCertificate

from deployer import Project
from deployer.providers import ProjectInfo, Release, Target
from deployer.providers.batch import BatchSpec
from deployer_azure.provider import AzureMLProvider

pytestmark = pytest.mark.docker
FILES = {
    "a.csv": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]],
    "b.csv": [[4.9, 3.0, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]],
}


@pytest.fixture
def cloud(
    certificate: TLSCertificate,
    registry: LocalRegistry,
    docker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FakeAzureML]:
    auth = {"username": registry.username, "password": registry.password}
    fake = FakeAzureML(certificate, (registry.host, registry.username, registry.password))
    fake.batch.runtime = DockerBatchRuntime(docker, auth)
    with azurite_blob() as connection:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
        fake.capture.connection = connection
        yield fake
        fake.close()


def test_a_batch_job_runs_the_image_over_the_input_files(
    cloud: FakeAzureML, iris_project: Project, iris_image: Any, docker: Any
) -> None:
    from azure.storage.blob import BlobServiceClient

    container = f"blobstore-{uuid.uuid4().hex[:12]}"
    cloud.capture.datastores["workspaceblobstore"]["properties"]["containerName"] = container
    storage = BlobServiceClient.from_connection_string(cloud.capture.connection)
    client = storage.create_container(container)
    for name, rows in FILES.items():
        lines = ["id,a,b,c,d", *(f"r{i},{','.join(map(str, r))}" for i, r in enumerate(rows))]
        client.upload_blob(f"in/{name}", ("\n".join(lines) + "\n").encode())
    client.upload_blob("in/c.csv", b"id,a,b,c,d\nr0,5.1,3.5,1.4,0.2\nr1,5.1,wide,1.4,0.2\n")

    provider = AzureMLProvider(
        Target("azure", "azureml", target_options(cloud, batch_compute="cpu-cluster")),
        ProjectInfo("iris-test"),
    )
    ref = provider.publish(iris_image, lambda _m: None)
    release = Release("iris-test", iris_image, [], {})
    base = f"az://{ACCOUNT}/{container}"
    spec = BatchSpec(f"{base}/in/", f"{base}/out/", "csv", keep=("id",))
    job = provider.batch_submit(release, ref, spec, lambda _m: None)
    for thread in cloud.batch.threads:
        thread.join(timeout=300)
    done = provider.batch_status(job.job_id)
    logs = "\n".join(provider.batch_logs(job.job_id))
    assert done.state == "failed", (done.reason, logs)
    assert "1 of 3 input files failed" in (done.reason or "") and "c.csv" in (done.reason or "")
    failure = json.loads(next(line for line in logs.splitlines() if '"c.csv"' in line))
    assert failure["file"] == "c.csv" and failure["rows"] == "2"
    assert "could not convert string to float: 'wide'" in failure["error"]

    model = iris_project.load_model()
    for name, rows in FILES.items():
        text = client.download_blob(f"out/{name}").readall().decode()
        table = list(csv.DictReader(io.StringIO(text)))
        expected = model.predict(numpy.array(rows), "predict", {}).tolist()
        assert [r["id"] for r in table] == [f"r{i}" for i in range(len(rows))]
        assert [r["prediction"] for r in table] == [str(v) for v in expected]
    assert not cloud.batch.refused and not cloud.refused
    assert not docker.containers.list(all=True, filters={"label": "deployer-test=azure-fake"})
