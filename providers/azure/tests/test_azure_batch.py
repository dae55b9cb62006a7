"""Batch jobs on an Azure ML batch endpoint, driven by azure-ai-ml against the fake
(requests checked against the REST models and the service's limits), input and output
in Azurite; the job runs the deployment's scoring script as Azure's batch driver does
(here a stub runtime; test_azure_batch_docker.py runs the real image)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure_fake import FakeAzureML
from azure_support import image_ref, release
from azurite_support import ACCOUNT, azurite_blob

from deployer.providers import UsageError
from deployer.providers.batch import BatchSpec, RunsBatch
from deployer.providers.monitoring import CapturesPredictions
from deployer_azure import names

CSV = "a,b,c,d\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"


def quiet(_message: str) -> None:
    return None


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    with azurite_blob() as connection:
        yield connection


@pytest.fixture
def storage(fake: FakeAzureML, azurite: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The workspace's default datastore in Azurite (a fresh container per test)."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    fake.capture.connection = azurite
    container = f"blobstore-{uuid.uuid4().hex[:12]}"
    fake.capture.datastores["workspaceblobstore"]["properties"]["containerName"] = container
    client = BlobServiceClient.from_connection_string(azurite).create_container(container)
    for name in ("a.csv", "b.csv", "c.csv"):
        client.upload_blob(f"inputs/{name}", CSV.encode())
    return client


def spec(storage: Any, **changes: Any) -> BatchSpec:
    base = f"az://{ACCOUNT}/{storage.container_name}"
    values: dict[str, Any] = {
        "input_uri": f"{base}/inputs/",
        "output_uri": f"{base}/outputs/",
        "format": "csv",
        **changes,
    }
    return BatchSpec(**values)


def finished(fake: FakeAzureML, provider: Any, job_id: str) -> Any:
    """The job's status once the fake's job thread ended."""
    for thread in fake.batch.threads:
        thread.join(timeout=60)
    return provider.batch_status(job_id)


def test_a_job_scores_every_file_into_the_output_folder(
    fake: FakeAzureML, make_provider: Any, storage: Any
) -> None:
    provider = make_provider(batch_compute="cpu-cluster", batch_mini_batch_size=2)
    messages: list[str] = []
    job = provider.batch_submit(release(1), image_ref(fake, 1), spec(storage), messages.append)
    assert job.state in ("pending", "running") and job.target == "azure"
    assert any("creating batch endpoint iris-azure-batch" in m for m in messages)
    done = finished(fake, provider, job.job_id)
    assert done.state == "succeeded" and done.complete, done
    assert done.output_uri == "azureml://datastores/workspaceblobstore/paths/outputs/"
    assert isinstance(provider, RunsBatch) and isinstance(provider, CapturesPredictions)
    outputs = sorted(b.name for b in storage.list_blobs(name_starts_with="outputs/"))
    assert outputs == ["outputs/a.csv", "outputs/b.csv", "outputs/c.csv"]
    body = storage.download_blob("outputs/a.csv").readall().decode()
    assert body == "prediction\n0\n0\n"

    deployment = fake.batch.deployments[
        ("iris-azure-batch", names.deployment_name(release(1).version))
    ]
    props = deployment["properties"]
    assert props["miniBatchSize"] == 2 and props["outputAction"] == "SummaryOnly"
    assert props["compute"].endswith("/computes/cpu-cluster")
    assert props["errorThreshold"] == 0
    assert props["codeConfiguration"]["scoringScript"] == "score.py"
    assert '"format": "csv"' in props["environmentVariables"]["DEPLOYER_BATCH_OPTIONS"]
    assert not fake.batch.refused and not fake.refused
    logs = list(provider.batch_logs(job.job_id))
    assert "== logs/azureml/job_result.txt" in logs and "status: Completed" in logs


def test_a_data_asset_is_an_input(fake: FakeAzureML, make_provider: Any, storage: Any) -> None:
    uri = "azureml://datastores/workspaceblobstore/paths/inputs/"
    body = {"properties": {"dataType": "uri_folder", "dataUri": uri}}
    assert fake.capture.put_data(body, "iris-inputs", "3")[0] == 201
    provider = make_provider(batch_compute="cpu-cluster")
    job = provider.batch_submit(
        release(1), image_ref(fake, 1), spec(storage, input_uri="azureml:iris-inputs:3"), quiet
    )
    assert finished(fake, provider, job.job_id).state == "succeeded"
    sent = fake.batch.invocations[-1]["properties"]["inputData"]["UriFolder"]["uri"]
    assert sent.endswith("/data/iris-inputs/versions/3")
    assert len(list(storage.list_blobs(name_starts_with="outputs/"))) == 3


def test_failed_files_fail_the_job_with_azures_reason(
    fake: FakeAzureML, make_provider: Any, storage: Any
) -> None:
    fake.batch.runtime.failing.add("b.csv")  # type: ignore[attr-defined]
    provider = make_provider(
        batch_compute="cpu-cluster", batch_mini_batch_size=1, batch_output_action="append_row"
    )
    job = provider.batch_submit(release(1), image_ref(fake, 1), spec(storage), quiet)
    done = finished(fake, provider, job.job_id)
    assert done.state == "failed" and not done.complete
    assert "1 of 3 input files failed" in (done.reason or "")
    assert "b.csv" in (done.reason or "") and "ValueError: cannot score b.csv" in done.reason
    listed = storage.download_blob("outputs/predictions.csv").readall().decode()
    assert listed.splitlines() == ["a.csv,2,2", "c.csv,2,2"]


def test_cancel_stops_a_running_job(fake: FakeAzureML, make_provider: Any, storage: Any) -> None:
    import threading

    gate = threading.Event()
    fake.batch.runtime.gate = gate  # type: ignore[attr-defined]
    provider = make_provider(batch_compute="cpu-cluster")
    job = provider.batch_submit(release(1), image_ref(fake, 1), spec(storage), quiet)
    cancelled = provider.batch_cancel(job.job_id)
    assert cancelled.state in ("running", "cancelled")
    assert finished(fake, provider, job.job_id).state == "cancelled"
    assert fake.requests_to("POST", f"/jobs/{job.job_id}/cancel")


def test_bad_places_and_missing_compute_say_what_is_expected(
    fake: FakeAzureML, make_provider: Any, storage: Any
) -> None:
    provider = make_provider(batch_compute="cpu-cluster")
    with pytest.raises(UsageError, match=r"input: 's3://b/in' is not a place .* az://"):
        provider.batch_submit(release(1), "x", spec(storage, input_uri="s3://b/in"), quiet)
    with pytest.raises(UsageError, match="no datastore of the workspace is the container"):
        provider.batch_submit(
            release(1), "x", spec(storage, output_uri=f"az://{ACCOUNT}/nope/out/"), quiet
        )
    with pytest.raises(UsageError, match="batch_compute is not set"):
        make_provider().batch_submit(release(1), image_ref(fake, 1), spec(storage), quiet)
    with pytest.raises(UsageError, match="format parquet: the image's batch driver reads CSV"):
        provider.batch_submit(release(1), "x", spec(storage, format="parquet"), quiet)
    with pytest.raises(UsageError, match="no batch job nope-job"):
        provider.batch_status("nope-job")


def test_the_fake_refuses_a_deployment_outside_the_limits(fake: FakeAzureML) -> None:
    body = {
        "properties": {
            "compute": "/x/computes/gpu-cluster",
            "miniBatchSize": 0,
            "errorThreshold": -2,
            "outputAction": "Everything",
            "retrySettings": {"maxRetries": 1, "timeout": "PT0S"},
            "resources": {"instanceCount": 51},
        }
    }
    problems = fake.batch.deployment_problems(body)
    for expected in (
        "compute: '/x/computes/gpu-cluster' is not a cluster",
        "miniBatchSize: 0 is below 1",
        "errorThreshold: -2 is below -1",
        "outputAction: 'Everything'",
        "retrySettings.timeout: PT0S is not positive",
        "instanceCount: 51 is not within 1-50",
        "codeConfiguration.codeId",
    ):
        assert any(expected in p for p in problems), (expected, problems)


def test_the_drivers_options_come_from_the_deployments_environment() -> None:
    from deployer.serving import azure_batch
    from deployer_azure.batch_specs import job_options

    options = job_options(BatchSpec("in", "out", "jsonl", keep=("id",), label="y"))
    assert azure_batch.options_from({azure_batch.OPTIONS_ENV: options}) == {
        "format": "jsonl",
        "keep": ("id",),
        "label": "y",
        "columns": (),
        "rows_per_batch": 1000,
    }
    assert azure_batch.options_from({})["format"] is None
    with pytest.raises(ValueError, match="DEPLOYER_BATCH_OPTIONS: expected a JSON object"):
        azure_batch.options_from({azure_batch.OPTIONS_ENV: "[1]"})
    assert azure_batch.output_name("/mnt/in/a.csv", None) == "a.csv"
    assert azure_batch.output_name("/mnt/in/a.txt", "csv") == "a.csv"
