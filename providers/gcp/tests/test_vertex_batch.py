"""Batch prediction on Vertex AI: a BatchPredictionJob created, read and cancelled through
the real SDK's JobServiceClient against the fake (which checks each request against the
v1 reference and runs the Model's container over the input in the fake Cloud Storage);
the outputs read back through the gs:// data source (google-cloud-storage at the wire)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from gcs_fake import FakeGcs
from vertex_support import PROJECT, push, release

from deployer.providers import UsageError, open_uri
from deployer.providers.batch import BatchSpec, RunsBatch
from deployer_gcp.provider import VertexProvider

IMAGE_REF = f"127.0.0.1:1/unused/{PROJECT}@sha256:{'0' * 64}"
CSV = b"id,a,b,c,d,label\n1,5.1,3.5,1.4,0.2,0\n2,6.7,3.0,5.2,2.3,2\n3,5.9,3.0,4.2,1.5,1\n"
JSONL = b'{"a": 1, "b": 2}\n{"a": 3, "b": 4}\n'


class Recording:
    """A runtime answering one prediction per instance (its first value), recording the
    bodies; ``fail_with`` makes every prediction answer that HTTP status."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.fail_with: int | None = None
        self.fail_value: Any = None  # a batch holding this first value fails (500)

    def start(self, deployed_model_id: str, model: Any) -> None:
        self.started.append(model.container_spec.image_uri)

    def predict(self, deployed_model_id: str, body: bytes, content_type: str) -> Any:
        data = json.loads(body)
        self.bodies.append(data)
        if self.fail_with:
            return self.fail_with, b'{"error": "bad row"}', "application/json"
        if any(i[0] == self.fail_value for i in data["instances"] if isinstance(i, list)):
            return 500, b'{"error": "model crashed"}', "application/json"
        answer = {"predictions": [i[0] if isinstance(i, list) else i for i in data["instances"]]}
        return 200, json.dumps(answer).encode(), "application/json"

    def stop(self, deployed_model_id: str) -> None:
        self.stopped.append(deployed_model_id)


@pytest.fixture
def gcs(vertex: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGcs]:
    fake = FakeGcs({"batch-in": {"rows.csv": CSV, "rows.jsonl": JSONL}, "batch-out": {}}).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.host)
    vertex.jobs.gcs = fake
    try:
        yield fake
    finally:
        vertex.jobs.gcs = None
        fake.stop()


@pytest.fixture
def runtime(vertex: Any) -> Recording:
    vertex.runtime = recording = Recording()
    return recording


def target(vertex: Any, **overrides: Any) -> VertexProvider:
    from vertex_support import provider

    return provider(vertex.address, max_replicas=3, **overrides)


def finished(vertex: Any, provider: VertexProvider, job_id: str) -> Any:
    assert vertex.jobs.finished[job_id].wait(30)
    return provider.batch_status(job_id)


def read(uri: str) -> bytes:
    with open_uri(uri).open() as stream:
        return stream.read()


def test_a_csv_job_scores_every_row_with_the_features_by_name(vertex, adc, gcs, runtime) -> None:
    provider = target(vertex)
    assert isinstance(provider, RunsBatch)
    rel = release(1)
    spec = BatchSpec(
        "gs://batch-in/rows.csv",
        "gs://batch-out/scored",
        "csv",
        columns=("a", "b", "c", "d"),
        keep=("id",),
        rows_per_request=2,
        job_name="nightly",
    )
    notes: list[str] = []
    job = provider.batch_submit(rel, IMAGE_REF, spec, notes.append)
    assert job.state == "pending" and job.job_id.startswith(
        "projects/demo-project/locations/us-central1/batchPredictionJobs/"
    )
    done = finished(vertex, provider, job.job_id)
    assert done.state == "succeeded" and done.complete
    assert (done.rows_done, done.rows_failed, done.rows_total) == (3, 0, 3)
    # the request, as the SDK sent it
    (sent,) = vertex.requests("CreateBatchPredictionJob")
    bpj = sent.batch_prediction_job
    assert bpj.display_name == "nightly"
    assert bpj.model == next(iter(vertex.models))  # the release's Model, uploaded once
    assert list(bpj.input_config.gcs_source.uris) == ["gs://batch-in/rows.csv"]
    assert bpj.input_config.instances_format == "csv"
    assert bpj.output_config.predictions_format == "jsonl"
    assert bpj.output_config.gcs_destination.output_uri_prefix == "gs://batch-out/scored"
    assert bpj.dedicated_resources.machine_spec.machine_type == "n1-standard-2"
    assert (
        bpj.dedicated_resources.starting_replica_count,
        bpj.dedicated_resources.max_replica_count,
    ) == (1, 3)
    assert bpj.manual_batch_tuning_parameters.batch_size == 2
    assert list(bpj.instance_config.included_fields) == ["a", "b", "c", "d"]
    assert bpj.instance_config.key_field == "id"
    assert bpj.labels["deployer-version"] == rel.version
    # the container got {"instances": [...]} of at most batch_size arrays, label and id dropped
    assert runtime.bodies == [
        {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
        {"instances": [[5.9, 3.0, 4.2, 1.5]]},
    ]
    assert len(runtime.stopped) == 1
    # Vertex's output files, read back through the gs:// data source
    assert done.output_uri.startswith("gs://batch-out/scored/prediction-iris-test-gcp-")
    lines = read(done.output_uri + "/prediction.results-00000-of-00001").decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"key": 1, "prediction": 5.1},
        {"key": 2, "prediction": 6.7},
        {"key": 3, "prediction": 5.9},
    ]
    assert read(done.output_uri + "/prediction.errors_stats-00000-of-00001") == b""
    # the job's number works as well as its name
    number = job.job_id.rsplit("/", 1)[1]
    assert provider.batch_status(number).state == "succeeded"


def test_a_pushed_release_reuses_its_model(vertex, adc, gcs, runtime) -> None:
    provider = target(vertex)
    rel = release(1)
    push(provider, rel)
    uploads = len(vertex.requests("UploadModel"))
    spec = BatchSpec("gs://batch-in/rows.jsonl", "gs://batch-out/j", "jsonl")
    job = provider.batch_submit(rel, IMAGE_REF, spec, lambda _m: None)
    done = finished(vertex, provider, job.job_id)
    assert done.complete and len(vertex.requests("UploadModel")) == uploads
    # no shaping asked: each JSON line is the instance, as is
    assert runtime.bodies[-1] == {"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}
    (sent,) = vertex.requests("CreateBatchPredictionJob")
    assert not sent.batch_prediction_job.instance_config.instance_type


def test_a_folder_is_every_object_in_it(vertex, adc, gcs, runtime) -> None:
    gcs.objects["batch-in"]["daily/part-1.jsonl"] = b"[1, 2]\n[3, 4]\n"
    gcs.objects["batch-in"]["daily/part-2.jsonl"] = b"[5, 6]\n"
    provider = target(vertex)
    spec = BatchSpec("gs://batch-in/daily/", "gs://batch-out/d", "jsonl")
    done = finished(
        vertex, provider, provider.batch_submit(release(1), IMAGE_REF, spec, print).job_id
    )
    assert done.complete and done.rows_done == 3
    (sent,) = vertex.requests("CreateBatchPredictionJob")
    assert list(sent.batch_prediction_job.input_config.gcs_source.uris) == ["gs://batch-in/daily/*"]
    assert runtime.bodies == [{"instances": [[1, 2], [3, 4], [5, 6]]}]


def test_failed_predictions_are_counted_and_named(vertex, adc, gcs, runtime) -> None:
    provider = target(vertex)
    runtime.fail_with = 400
    spec = BatchSpec(
        "gs://batch-in/rows.csv", "gs://batch-out/f", "csv", label="label", keep=("id",)
    )
    done = finished(
        vertex, provider, provider.batch_submit(release(1), IMAGE_REF, spec, print).job_id
    )
    assert done.state == "failed" and not done.complete
    assert done.rows_failed == 3 and done.rows_done == 0
    assert "Prediction request failed: 400" in (done.reason or "")
    assert any("3 instances" in f for f in done.failures)
    stats = read(done.output_uri + "/prediction.errors_stats-00000-of-00001").decode()
    assert "bad row" in stats and stats.rstrip().endswith(", 3)")
    (sent,) = vertex.requests("CreateBatchPredictionJob")
    assert list(sent.batch_prediction_job.instance_config.excluded_fields) == ["label"]
    assert runtime.bodies[0]["instances"][0] == [5.1, 3.5, 1.4, 0.2]  # label and id dropped


def test_a_partly_failed_job_names_its_failures_and_is_not_complete(
    vertex, adc, gcs, runtime
) -> None:
    provider = target(vertex)
    runtime.fail_value = 6.7  # the second row: its batch of one fails
    spec = BatchSpec(
        "gs://batch-in/rows.csv",
        "gs://batch-out/p",
        "csv",
        label="label",
        keep=("id",),
        rows_per_request=1,
    )
    done = finished(
        vertex, provider, provider.batch_submit(release(1), IMAGE_REF, spec, print).job_id
    )
    assert done.details["vertex_state"] == "JOB_STATE_PARTIALLY_SUCCEEDED"
    assert done.state == "succeeded" and not done.complete
    assert (done.rows_done, done.rows_failed, done.rows_total) == (2, 1, 3)
    assert done.failures == [
        'Prediction request failed: 500 {"error": "model crashed"} (1 instances)'
    ]
    lines = read(done.output_uri + "/prediction.results-00000-of-00001").decode().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == [1, 3]


def test_a_missing_input_fails_the_job_with_vertex_reason(vertex, adc, gcs, runtime) -> None:
    provider = target(vertex)
    spec = BatchSpec("gs://batch-in/none.csv", "gs://batch-out/x", "csv")
    done = finished(
        vertex, provider, provider.batch_submit(release(1), IMAGE_REF, spec, print).job_id
    )
    assert done.state == "failed" and "gs://batch-in/none.csv" in (done.reason or "")
    logs = list(provider.batch_logs(done.job_id))
    assert any("JOB_STATE_FAILED" in line for line in logs)
    assert any(line.startswith("error: ") and "none.csv" in line for line in logs)
    assert any("console.cloud.google.com/logs/query" in line for line in logs)


def test_cancel_stops_a_running_job(vertex, adc, gcs, runtime) -> None:
    provider = target(vertex)
    gate = vertex.jobs.hold()
    spec = BatchSpec("gs://batch-in/rows.csv", "gs://batch-out/c", "csv")
    job = provider.batch_submit(release(1), IMAGE_REF, spec, print)
    cancelling = provider.batch_cancel(job.job_id)
    assert cancelling.state == "running"
    assert cancelling.details["vertex_state"] == "JOB_STATE_CANCELLING"
    gate.set()
    done = finished(vertex, provider, job.job_id)
    assert done.state == "cancelled" and runtime.bodies == []
    # cancelling a finished job asks nothing more of Vertex
    assert provider.batch_cancel(job.job_id).state == "cancelled"
    assert len(vertex.requests("CancelBatchPredictionJob")) == 1


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (BatchSpec("data/rows.csv", "gs://batch-out/x", "csv"), ["--input", "gcloud storage cp"]),
        (BatchSpec("gs://batch-in/rows.csv", "/tmp/out", "csv"), ["--output", "gs://BUCKET/PATH"]),
        (BatchSpec("gs://batch-in/r.parquet", "gs://batch-out/x", "parquet"), ["--format parquet"]),
        (
            BatchSpec("gs://batch-in/r.csv", "gs://batch-out/x", "csv", keep=("id", "ts")),
            ["--keep id,ts"],
        ),
    ],
)
def test_what_vertex_batch_cannot_take_is_a_usage_error(vertex, adc, spec, words) -> None:
    provider = target(vertex)
    with pytest.raises(UsageError) as caught:
        provider.batch_submit(release(1), IMAGE_REF, spec, print)
    text = f"{caught.value} {caught.value.hint or ''}"
    assert all(word in text for word in words), text
    assert (
        vertex.requests("UploadModel") == [] and vertex.requests("CreateBatchPredictionJob") == []
    )


def test_the_fake_refuses_a_job_vertex_would_refuse(vertex, adc) -> None:
    from deployer.errors import DeployerError

    provider = target(vertex)
    api = provider.api
    types = api.types
    job = types.BatchPredictionJob(
        display_name="x",
        model=f"{api.parent}/models/1",
        input_config=types.BatchPredictionJob.InputConfig(
            instances_format="parquet", gcs_source=types.GcsSource(uris=["gs://batch-in/a"])
        ),
        output_config=types.BatchPredictionJob.OutputConfig(
            predictions_format="jsonl",
            gcs_destination=types.GcsDestination(output_uri_prefix="gs://batch-out"),
        ),
    )
    with pytest.raises(Exception) as caught:
        api.jobs.create_batch_prediction_job(parent=api.parent, batch_prediction_job=job)
    assert "instances_format 'parquet' is invalid" in str(caught.value)
    job.input_config.instances_format = "csv"
    with pytest.raises(Exception) as caught:
        api.jobs.create_batch_prediction_job(parent=api.parent, batch_prediction_job=job)
    assert "machine_type is required" in str(caught.value)
    with pytest.raises(DeployerError) as status:
        provider.batch_status("projects/demo-project/locations/us-central1/batchPredictionJobs/9")
    assert "not found" in str(status.value).lower()
    with pytest.raises(UsageError):
        provider.batch_status("not a job")


@pytest.mark.docker
def test_the_real_image_scores_a_batch_as_it_serves_online(
    vertex, adc, gcs, docker: Any, iris_image: Any, gcp_registry: Any, iris_model_file: Any
) -> None:
    """The image from the registry, run by the fake as Vertex runs it: the batch job's
    predictions are the endpoint's online ones for the same rows, and the model's own; the
    endpoint's request-response logging captured the online request."""
    import dataclasses

    import joblib
    import numpy as np
    from vertex_runtime import DockerRuntime
    from vertex_support import REGISTRY_USER, TOKEN

    from deployer.providers import Release, Strategy
    from deployer.providers.monitoring import CaptureSpec

    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.5, 5.0, 1.9]]
    header = "id,sepal_length,sepal_width,petal_length,petal_width,species\n"
    body = header + "".join(f"{i},{','.join(map(str, r))},x\n" for i, r in enumerate(rows))
    gcs.objects["batch-in"]["iris.csv"] = body.encode()
    provider = target(
        vertex,
        registry=f"{gcp_registry.host}/demo-project/deployer",
        bigquery_endpoint=vertex.bigquery.host,
    )
    vertex.runtime = runtime = DockerRuntime(docker, {"username": REGISTRY_USER, "password": TOKEN})
    rel = Release(PROJECT, iris_image, rows[:1], {}, capture=CaptureSpec(sample=1.0))
    try:
        ref = provider.publish(iris_image, lambda _m: None)
        deployment = provider.deploy(rel, ref, Strategy.parse("all-at-once"), print)
        assert provider.wait(deployment, 180, print).healthy
        vertex.bigquery.tables.clear()  # only the request below
        online = provider.invoke(json.dumps({"instances": rows}).encode(), "application/json")
        assert online.status == 200
        served = json.loads(online.body)["predictions"]
        spec = BatchSpec(
            "gs://batch-in/iris.csv",
            "gs://batch-out/iris",
            "csv",
            label="species",
            keep=("id",),
            rows_per_request=3,
        )
        job = provider.batch_submit(dataclasses.replace(rel, capture=None), ref, spec, print)
        assert vertex.jobs.finished[job.job_id].wait(180)
        done = provider.batch_status(job.job_id)
        assert done.complete, done
        results = read(done.output_uri + "/prediction.results-00000-of-00001").decode()
        batch = {line["key"]: line["prediction"] for line in map(json.loads, results.splitlines())}
        assert [batch[i] for i in range(len(rows))] == served
        expected = joblib.load(iris_model_file).predict(np.array(rows)).tolist()
        assert served == expected
        (captured,) = list(provider.captured())
        assert captured.predictions == served and captured.version == rel.version
        assert captured.rows is not None and captured.rows[1] == dict(
            zip(["f0", "f1", "f2", "f3"], rows[1], strict=True)
        )
        assert len(vertex.requests("UploadModel")) == 1  # the batch reused the pushed Model
    finally:
        runtime.close()
        provider.destroy(lambda _m: None)
