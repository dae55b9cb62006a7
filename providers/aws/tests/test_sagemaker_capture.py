"""SageMaker data capture from monitoring.capture: the endpoint config's DataCaptureConfig
(checked by the fake against botocore's model and SageMaker's rules), what plan shows and
refuses, idempotent pushes, and ``captured()`` reading SageMaker's capture files back."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import boto3
import pytest
from aws_fake import FakeAws
from aws_support import Recorder, image_ref, release
from botocore.config import Config

from deployer.errors import UsageError
from deployer.providers import Strategy
from deployer.providers.monitoring import CaptureSpec

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
