"""SageMaker data capture from monitoring.capture: the endpoint config's DataCaptureConfig
(checked by the fake against botocore's model and SageMaker's rules), what plan shows and
refuses, idempotent pushes, and ``captured()`` reading SageMaker's capture files back."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from aws_fake import FakeAws
from aws_support import Recorder, image_ref, release
from botocore.config import Config

from deployer.errors import UsageError
from deployer.providers import Strategy
from deployer.providers.monitoring import CapturedRecord, CaptureSpec, CapturesPredictions

BUCKET = "captures"
DEST = f"s3://{BUCKET}/iris"


def with_capture(seed: str, **fields: Any) -> Any:
    spec = CaptureSpec(**{"sample": 1.0, "destination": DEST, **fields})
    return dataclasses.replace(release(seed), capture=spec)


def push(provider: Any, rel: Any, progress: Recorder) -> Any:
    deployment = provider.deploy(rel, image_ref(rel), Strategy(), progress)
    assert provider.wait(deployment, 120, progress).healthy, progress.text
    return deployment


def s3(fake: FakeAws) -> Any:
    return boto3.client("s3", endpoint_url=fake.url, region_name="us-east-1")


def test_deploy_sets_data_capture_config(fake: FakeAws, provider: Any, progress: Recorder):
    p = provider()
    push(p, with_capture("one", sample=0.25, outputs=False), progress)
    (config,) = fake.calls("CreateEndpointConfig")
    assert config["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 25,
        "DestinationS3Uri": DEST,
        "CaptureOptions": [{"CaptureMode": "Input"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json", "application/jsonlines"],
        },
    }
    assert fake.rejected == []


def test_plan_shows_capture_and_an_identical_push_changes_nothing(fake, provider, progress):
    p = provider()
    rel = with_capture("one", sample=0.125)
    plan = p.plan(rel)
    line = next(c for c in plan.changes if c.resource == "data capture of endpoint iris-prod")
    assert line.action == "create"
    assert line.detail == f"12% of requests (Input+Output) to {DEST}"
    assert plan.notes == ["prod: sample 0.125 is 12.5%; SageMaker takes whole percents: 12%"]
    push(p, rel, progress)
    again = p.plan(rel)
    endpoint = [c for c in again.changes if not c.resource.startswith(("ECR", "image"))]
    assert again.ok and {c.action for c in endpoint} == {"keep"}
    assert any("data capture" in c.resource for c in endpoint)
    writes = len(fake.calls("CreateEndpointConfig"))
    assert not p.deploy(rel, image_ref(rel), Strategy(), progress).changed
    assert len(fake.calls("CreateEndpointConfig")) == writes


def test_changing_capture_makes_a_new_endpoint_config(fake, provider, progress):
    p = provider()
    push(p, with_capture("one", sample=0.5), progress)
    changed = with_capture("one", sample=1.0)
    plan = p.plan(changed)
    assert [c.action for c in plan.changes if "data capture" in c.resource] == ["update"]
    push(p, changed, progress)
    first, second = fake.calls("CreateEndpointConfig")
    assert first["EndpointConfigName"] != second["EndpointConfigName"]
    assert second["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    assert len(fake.calls("UpdateEndpoint")) == 1
    off = p.plan(release("one"))
    assert [c.action for c in off.changes if "data capture" in c.resource] == ["delete"]


def test_no_capture_keeps_the_names_of_before(fake, provider, progress):
    p = provider()
    push(p, release("one"), progress)
    (config,) = fake.calls("CreateEndpointConfig")
    assert "DataCaptureConfig" not in config
    changes = p.plan(release("one")).changes
    assert [c.action for c in changes if "endpoint" in c.resource] == ["keep"]


@pytest.mark.parametrize(
    ("fields", "options", "expected"),
    [
        ({"hash": ("email",)}, {}, r"redact \(email\) is not possible"),
        ({"drop": ("ssn",)}, {}, r"SageMaker captures whole request and response bodies"),
        ({}, {"serverless": {"memory_mb": 2048}}, "serverless endpoints have no data capture"),
        ({"inputs": False, "outputs": False}, {}, "nothing to capture"),
        (
            {"destination": "gs://other/prefix"},
            {},
            r"destination 'gs://other/prefix' is not an s3:// URI; set monitoring.capture"
            r".destination: s3://BUCKET/PREFIX or targets.prod.capture_s3_uri",
        ),
    ],
)
def test_plan_problems_for_what_sagemaker_cannot_do(
    fake: FakeAws, provider: Any, progress: Recorder, fields: dict, options: dict, expected: str
):
    p = provider(**options)
    rel = with_capture("one", **fields)
    plan = p.plan(rel)
    assert not plan.ok
    assert any(re.search(expected, text) for text in plan.problems), plan.problems
    with pytest.raises(UsageError, match=expected):
        p.deploy(rel, image_ref(rel), Strategy(), progress)
    assert fake.calls("CreateEndpointConfig") == []


def test_capture_s3_uri_option_is_the_destination_when_capture_names_none(fake, provider, progress):
    p = provider(capture_s3_uri="s3://team-bucket/capture/")
    push(p, with_capture("one", destination=None), progress)
    (config,) = fake.calls("CreateEndpointConfig")
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://team-bucket/capture"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"InitialSamplingPercentage": 101}, "above the maximum 100"),
        ({"InitialSamplingPercentage": -1}, "below the minimum 0"),
        ({"DestinationS3Uri": "file:///tmp/x"}, "does not match"),
        ({"DestinationS3Uri": "s3://x"}, "not an s3://bucket/prefix URI"),
        ({"CaptureOptions": []}, "below the minimum 1"),
        ({"CaptureOptions": [{"CaptureMode": "Both"}]}, "is not one of"),
    ],
)
def test_the_fake_refuses_what_sagemaker_refuses(fake: FakeAws, change: dict, expected: str):
    client = boto3.client(
        "sagemaker",
        endpoint_url=fake.url,
        region_name="us-east-1",
        config=Config(parameter_validation=False),
    )
    capture = {
        "InitialSamplingPercentage": 10,
        "DestinationS3Uri": DEST,
        "CaptureOptions": [{"CaptureMode": "Input"}],
        **change,
    }
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}
    with pytest.raises(client.exceptions.ClientError, match=expected):
        client.create_endpoint_config(
            EndpointConfigName="c", ProductionVariants=[variant], DataCaptureConfig=capture
        )


def test_the_fake_refuses_capture_on_a_serverless_variant(fake: FakeAws):
    client = boto3.client("sagemaker", endpoint_url=fake.url, region_name="us-east-1")
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
    }
    capture = {
        "InitialSamplingPercentage": 10,
        "DestinationS3Uri": DEST,
        "CaptureOptions": [{"CaptureMode": "Input"}],
    }
    with pytest.raises(client.exceptions.ClientError, match="not supported on serverless"):
        client.create_endpoint_config(
            EndpointConfigName="c", ProductionVariants=[variant], DataCaptureConfig=capture
        )


# -- captured(): SageMaker's capture files read back -----------------------------------


def serving(fake: FakeAws, provider: Any, progress: Recorder, **fields: Any) -> Any:
    """A provider whose endpoint serves with capture on, and the bucket to capture into."""
    s3(fake).create_bucket(Bucket=BUCKET)
    p = provider()
    push(p, with_capture("one", **fields), progress)
    return p


def test_captured_reads_sagemakers_files_back_as_rows_and_predictions(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = serving(fake, provider, progress)
    assert isinstance(p, CapturesPredictions)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    fake.model_answers.extend(
        [
            (200, b"0\n2\n", "text/csv"),
            (200, b'{"predictions": [1]}', "application/json"),
            (200, b"2\n", "application/jsonlines"),
            (200, b"\x93NUMPY", "application/x-npy"),
        ]
    )
    assert p.invoke(b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv", "text/csv").status == 200
    assert p.invoke(b'{"instances": [[5.9, 3.0, 4.2, 1.5]]}', "application/json").status == 200
    assert p.invoke(b'{"features": [6.3, 2.9, 5.6, 1.8]}\n', "application/jsonlines").status == 200
    assert p.invoke(b"\x93NUMPY\x01\x00", "application/x-npy").status == 200
    assert len(fake.captures) == 4 and fake.capture_errors == []
    assert all(k.startswith("iris/iris-prod/AllTraffic/") for k in fake.captures)
    records = sorted(p.captured(), key=lambda r: fake_order(fake, r))
    assert [r.rows for r in records[:3]] == [
        [
            {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2},
            {"f0": 6.7, "f1": 3.0, "f2": 5.2, "f3": 2.3},
        ],
        [{"f0": 5.9, "f1": 3.0, "f2": 4.2, "f3": 1.5}],
        [{"f0": 6.3, "f1": 2.9, "f2": 5.6, "f3": 1.8}],
    ]
    assert [r.predictions for r in records] == [[0, 2], [1], [2], None]
    npy = records[3]
    assert npy.rows is None and npy.extra["input_content_type"] == "application/x-npy"
    assert all(r.time >= before for r in records)
    assert len({r.request_id for r in records}) == 4
    assert list(p.captured(since=datetime.now(timezone.utc) + timedelta(hours=2))) == []
    assert len(list(p.captured(since=before))) == 4


def fake_order(fake: FakeAws, record: CapturedRecord) -> int:
    """The record's position among the invocations (its event id is in its file only)."""
    client = s3(fake)
    for index, key in enumerate(fake.captures):
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        if record.extra["event_id"] in body:
            return index
    raise AssertionError(record)


def test_captured_inputs_only_and_bad_lines_are_skipped(fake, provider, progress) -> None:
    from deployer_aws.capture_files import Reader

    p = serving(fake, provider, progress, outputs=False)
    fake.model_answers.append((200, b"0\n", "text/csv"))
    p.invoke(b"5.1,3.5,1.4,0.2\n", "text/csv", "text/csv")
    s3(fake).put_object(
        Bucket=BUCKET, Key="iris/iris-prod/AllTraffic/2020/01/01/00/junk.jsonl", Body=b"{oops\n[]\n"
    )
    reader = Reader(p.scope)
    (record,) = reader.records(None)
    assert record.rows == [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]
    assert record.predictions is None
    assert reader.skipped == 2
    # an hour before the junk's is never listed once `since` is later
    later = Reader(p.scope)
    assert len(list(later.records(datetime(2021, 1, 1, tzinfo=timezone.utc)))) == 1
    assert later.skipped == 0


def test_an_inference_id_is_the_records_request_id(fake, provider, progress) -> None:
    p = serving(fake, provider, progress)
    fake.model_answers.append((200, b'{"predictions": [0]}', "application/json"))
    runtime = boto3.client("sagemaker-runtime", endpoint_url=fake.url, region_name="us-east-1")
    runtime.invoke_endpoint(
        EndpointName="iris-prod",
        Body=b"[[5.1, 3.5, 1.4, 0.2]]",
        ContentType="application/json",
        InferenceId="feedback-7",
    )
    (record,) = p.captured()
    assert record.request_id == "feedback-7" and record.predictions == [0]


def test_captured_decodes_the_documented_event_format() -> None:
    from deployer_aws.capture_files import decode_event

    event = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "MSwyLDMsNA==",
                "encoding": "BASE64",
            },
            "endpointOutput": {
                "observedContentType": "application/json; charset=utf-8",
                "mode": "OUTPUT",
                "data": '{"predictions": ["setosa"]}',
                "encoding": "JSON",
            },
        },
        "eventMetadata": {
            "eventId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "inferenceId": "req-42",
            "inferenceTime": "2026-12-07T04:31:00Z",
        },
        "eventVersion": "0",
    }
    record = decode_event(event)
    assert record.request_id == "req-42"
    assert record.time == datetime(2026, 12, 7, 4, 31, tzinfo=timezone.utc)
    assert record.rows == [{"f0": 1, "f1": 2, "f2": 3, "f3": 4}]
    assert record.predictions == ["setosa"]


def test_captured_without_capture_or_endpoint_is_a_usage_error(fake, provider, progress) -> None:
    p = provider()
    with pytest.raises(UsageError, match="has no SageMaker endpoint iris-prod"):
        list(p.captured())
    push(p, release("one"), progress)
    with pytest.raises(UsageError, match=r"iris-prod \(prod\) captures nothing"):
        list(p.captured())


def test_a_missing_bucket_drops_captures_as_sagemaker_does(fake, provider, progress) -> None:
    p = provider()
    push(p, with_capture("one"), progress)  # no bucket created
    fake.model_answers.append((200, b"0\n", "text/csv"))
    assert p.invoke(b"1,2,3,4\n", "text/csv").status == 200
    assert fake.captures == [] and len(fake.capture_errors) == 1
    assert list(p.captured()) == []
