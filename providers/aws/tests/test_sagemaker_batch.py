"""SageMaker Batch Transform through the RunsBatch capability: the real boto3 against the
fake (CreateTransformJob checked against botocore's model and SageMaker's rules, run over
the S3 input by the fake: aws_batch_fake.py), status, logs and cancel. The model answers
come from ``model_answers`` here; test_sagemaker_batch_docker.py runs the real image."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from aws_fake import FakeAws
from aws_support import Recorder, image_ref, release

from deployer.errors import UsageError
from deployer.providers.batch import BatchSpec, RunsBatch

BUCKET = "batch-data"
V1 = release("one")


def s3(fake: FakeAws) -> Any:
    return boto3.client("s3", endpoint_url=fake.url, region_name="us-east-1")


def upload(fake: FakeAws, files: dict[str, bytes]) -> None:
    client = s3(fake)
    client.create_bucket(Bucket=BUCKET)
    for key, body in files.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)


def read(fake: FakeAws, key: str) -> bytes:
    return s3(fake).get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[no-any-return]


def spec(**fields: Any) -> BatchSpec:
    base = {
        "input_uri": f"s3://{BUCKET}/in/",
        "output_uri": f"s3://{BUCKET}/out/",
        "format": "csv",
        "job_name": "iris-nightly-1",
    }
    return BatchSpec(**{**base, **fields})


def finish(fake: FakeAws, p: Any, job_id: str) -> Any:
    """Wait for the fake's runner to end the job, then read it back through the provider."""
    assert fake.transforms[job_id].done.wait(60)
    return p.batch_status(job_id)


def test_a_csv_job_runs_over_every_file_and_writes_sagemakers_out_files(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider(batch_instance_type="ml.c5.xlarge", batch_instance_count=2)
    assert isinstance(p, RunsBatch)
    upload(fake, {"in/a.csv": b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "in/b.csv": b"1,2,3,4\n"})
    fake.model_answers.extend([(200, b"0\n2\n", "text/csv"), (200, b"1\n", "text/csv")])
    job = p.batch_submit(V1, image_ref(V1), spec(max_payload_bytes=64 * 1024 * 1024), progress)
    assert job.job_id == "iris-nightly-1" and job.state == "pending"
    (request,) = fake.calls("CreateTransformJob")
    (model,) = fake.calls("CreateModel")
    assert request == {
        "TransformJobName": "iris-nightly-1",
        "ModelName": model["ModelName"],
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,  # InvokeEndpoint's limit, whatever the spec allows
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://batch-data/in/"}
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": "s3://batch-data/out/",
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2},
        "Tags": [
            {"Key": "deployer-project", "Value": "iris"},
            {"Key": "deployer-target", "Value": "prod"},
            {"Key": "deployer-version", "Value": V1.version},
        ],
    }
    assert model["PrimaryContainer"]["Image"] == image_ref(V1)
    done = finish(fake, p, job.job_id)
    assert done.state == "succeeded" and done.complete, done
    assert done.output_uri == "s3://batch-data/out/"
    assert done.details["instance_count"] == 2
    assert read(fake, "out/a.csv.out") == b"0\n2\n"
    assert read(fake, "out/b.csv.out") == b"1\n"
    assert fake.transforms[job.job_id].bodies == [
        b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n",
        b"1,2,3,4\n",
    ]
    lines = list(p.batch_logs(job.job_id))
    assert "data-log: s3://batch-data/in/a.csv: 2 records scored into " in "\n".join(lines)
    assert fake.rejected == []


def test_the_model_of_a_deployed_version_is_reused(fake, provider, progress) -> None:
    p = provider()
    upload(fake, {"in/a.csv": b"1,2,3,4\n"})
    fake.model_answers.append((200, b"0\n", "text/csv"))
    first = p.batch_submit(V1, image_ref(V1), spec(), progress)
    finish(fake, p, first.job_id)
    fake.model_answers.append((200, b"0\n", "text/csv"))
    second = p.batch_submit(V1, image_ref(V1), spec(job_name="iris-nightly-2"), progress)
    finish(fake, p, second.job_id)
    assert len(fake.calls("CreateModel")) == 1


def test_keep_and_label_with_json_lines_use_sagemakers_filters_and_join(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider()
    rows = [
        {"id": 7, "ts": "t1", "y": 0, "features": [5.1, 3.5, 1.4, 0.2]},
        {"id": 8, "ts": "t2", "y": 2, "features": [6.7, 3.0, 5.2, 2.3]},
    ]
    upload(fake, {"in/rows.jsonl": b"".join(json.dumps(r).encode() + b"\n" for r in rows)})
    fake.model_answers.append((200, b"0\n2\n", "application/jsonlines"))
    job = p.batch_submit(
        V1, image_ref(V1), spec(format="jsonl", keep=("id", "ts"), label="y"), progress
    )
    (request,) = fake.calls("CreateTransformJob")
    assert request["TransformInput"]["ContentType"] == "application/jsonlines"
    assert request["TransformOutput"]["Accept"] == "application/jsonlines"
    assert request["DataProcessing"] == {
        "InputFilter": "$.features",
        "JoinSource": "Input",
        "OutputFilter": "$['id','ts','SageMakerOutput']",
    }
    assert finish(fake, p, job.job_id).complete
    # the model saw the features only (no label, no kept columns)
    assert fake.transforms[job.job_id].bodies == [b"[5.1, 3.5, 1.4, 0.2]\n[6.7, 3.0, 5.2, 2.3]\n"]
    out = [json.loads(line) for line in read(fake, "out/rows.jsonl.out").splitlines()]
    assert out == [
        {"id": 7, "ts": "t1", "SageMakerOutput": 0},
        {"id": 8, "ts": "t2", "SageMakerOutput": 2},
    ]


def test_records_are_grouped_under_max_payload(fake: FakeAws, provider: Any, progress) -> None:
    p = provider()
    record = ",".join(["1.5"] * 100_000)  # ~400 KB per record
    upload(fake, {"in/big.csv": "\n".join([record] * 5).encode() + b"\n"})
    two, one = (200, b"0\n0\n", "text/csv"), (200, b"0\n", "text/csv")
    fake.model_answers.extend([two, two, one])
    job = p.batch_submit(V1, image_ref(V1), spec(max_payload_bytes=1024 * 1024), progress)
    assert fake.calls("CreateTransformJob")[0]["MaxPayloadInMB"] == 1
    assert finish(fake, p, job.job_id).state == "succeeded"
    bodies = fake.transforms[job.job_id].bodies
    assert [body.count(b"\n") for body in bodies] == [2, 2, 1]
    assert all(len(body) <= 1024 * 1024 for body in bodies)
    assert read(fake, "out/big.csv.out") == b"0\n" * 5


def test_a_failing_record_fails_the_job_naming_file_and_records(fake, provider, progress) -> None:
    p = provider()
    upload(fake, {"in/a.csv": b"1,2\n3,4\n"})
    fake.model_answers.append((400, b'{"error": "expected 4 features per row, got 2"}', "json"))
    job = p.batch_submit(V1, image_ref(V1), spec(), progress)
    failed = finish(fake, p, job.job_id)
    assert failed.state == "failed" and not failed.complete
    assert failed.reason is not None
    assert "s3://batch-data/in/a.csv: records 1-2" in failed.reason
    assert "expected 4 features per row, got 2" in failed.reason
    assert any("s3://batch-data/in/a.csv: records 1-2" in line for line in failed.failures)


def test_cancel_stops_a_running_job(fake: FakeAws, provider: Any, progress: Recorder) -> None:
    p = provider()
    upload(fake, {"in/a.csv": b"1,2,3,4\n"})
    fake.hold_transforms.clear()
    job = p.batch_submit(V1, image_ref(V1), spec(), progress)
    assert p.batch_status(job.job_id).state == "running"
    cancelled = p.batch_cancel(job.job_id)
    assert cancelled.state == "running" and cancelled.details["status"] == "Stopping"
    assert len(fake.calls("StopTransformJob")) == 1
    fake.hold_transforms.set()
    assert finish(fake, p, job.job_id).state == "cancelled"
    # cancelling a finished job changes nothing
    assert p.batch_cancel(job.job_id).state == "cancelled"
    assert len(fake.calls("StopTransformJob")) == 1


def test_status_of_an_unknown_job_is_a_usage_error(fake: FakeAws, provider: Any) -> None:
    with pytest.raises(UsageError, match="prod has no SageMaker transform job nope"):
        provider().batch_status("nope")
    assert list(provider().batch_logs("nope")) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"input_uri": "data/in.csv"}, r"reads and writes S3 only: --input 'data/in.csv'"),
        ({"output_uri": "/tmp/out"}, r"--output '/tmp/out' is not an s3://BUCKET/PREFIX URI"),
        ({"format": "parquet"}, "format 'parquet' is not supported; expected csv or jsonl"),
        ({"keep": ("id",)}, "need JSON Lines input"),
        ({"label": "y"}, "need JSON Lines input"),
    ],
)
def test_what_batch_transform_cannot_take_is_refused_before_any_call(
    fake: FakeAws, provider: Any, progress: Recorder, fields: dict, expected: str
) -> None:
    with pytest.raises(UsageError, match=expected):
        provider().batch_submit(V1, image_ref(V1), spec(**fields), progress)
    assert fake.calls("CreateModel") == [] and fake.calls("CreateTransformJob") == []


def test_a_default_job_name_fits_sagemakers_rules(fake, provider, progress) -> None:
    upload(fake, {"in/a.csv": b"1,2,3,4\n"})
    fake.model_answers.append((200, b"0\n", "text/csv"))
    p = provider(endpoint_name="e" * 63)
    job = p.batch_submit(V1, image_ref(V1), spec(job_name=None), progress)
    assert len(job.job_id) <= 63 and job.job_id.startswith("eeee")
    finish(fake, p, job.job_id)
    # the core's names (project_target-batch-time-hex) are made to fit too
    fake.model_answers.append((200, b"0\n", "text/csv"))
    name = "my_project-" + "x" * 60 + "-batch-20261207-045100-ab12"
    long = p.batch_submit(V1, image_ref(V1), spec(job_name=name), progress)
    assert len(long.job_id) <= 63 and long.job_id.startswith("my-project-xxx")
    assert finish(fake, p, long.job_id).complete
    assert fake.rejected == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ModelName": "missing"}, 'Could not find model "missing"'),
        ({"MaxPayloadInMB": 50, "MaxConcurrentTransforms": 3}, "exceeds 100 MB"),
        ({"MaxPayloadInMB": 101}, "exceeds 100 MB"),
        ({"TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
          "S3Uri": "s3://batch-data/in/"}}, "SplitType": "None"}}, "needs a SplitType"),
        ({"TransformResources": {"InstanceType": "ml.t9.huge", "InstanceCount": 1}},
         "is not one of"),
    ],
)  # fmt: skip
def test_the_fake_refuses_what_sagemaker_refuses(
    fake: FakeAws, provider: Any, progress: Recorder, change: dict, expected: str
) -> None:
    from botocore.config import Config

    upload(fake, {"in/a.csv": b"1,2,3,4\n"})
    fake.model_answers.append((200, b"0\n", "text/csv"))
    p = provider()
    p.batch_submit(V1, image_ref(V1), spec(), progress)
    finish(fake, p, "iris-nightly-1")
    client = boto3.client(
        "sagemaker",
        endpoint_url=fake.url,
        region_name="us-east-1",
        config=Config(parameter_validation=False),
    )
    request = {**fake.calls("CreateTransformJob")[0], "TransformJobName": "other", **change}
    with pytest.raises(client.exceptions.ClientError, match=expected):
        client.create_transform_job(**request)
    with pytest.raises(client.exceptions.ClientError, match="must be unique"):
        client.create_transform_job(**fake.calls("CreateTransformJob")[0])
