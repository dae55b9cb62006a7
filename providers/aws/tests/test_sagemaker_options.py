"""Options, names, the strategy mapping and route(): no AWS calls."""

from __future__ import annotations

import re

import pytest

from deployer.errors import ConfigError
from deployer.providers import ProjectInfo, Strategy, Target, provider_class
from deployer_aws import names
from deployer_aws.options import SageMakerOptions
from deployer_aws.provider import SageMakerProvider
from deployer_aws.sagemaker import deployment_config

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
BASE = {"provider": "sagemaker", "region": "eu-west-1", "role_arn": ROLE}


def make(target: str = "prod", project: str = "iris", **options: object) -> SageMakerProvider:
    return SageMakerProvider(Target(target, "sagemaker", {**BASE, **options}), ProjectInfo(project))


def problems(**options: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        SageMakerProvider(Target("prod", "sagemaker", options), ProjectInfo("iris"))
    return caught.value.problems


def test_entry_point_finds_the_provider() -> None:
    assert provider_class("sagemaker") is SageMakerProvider


def test_defaults() -> None:
    options = make().options
    assert options.instance_type == "ml.m5.large"
    assert options.instance_count == 1
    assert options.poll_interval == 15
    assert options.serverless is None and options.autoscaling is None
    assert options.keep_ecr_repository_on_destroy is True
    assert make().repository == "iris"
    assert make().endpoint == "iris-prod"


def test_required_fields_are_named() -> None:
    found = problems(provider="sagemaker")
    assert "targets.prod.region: required field is missing" in found
    assert "targets.prod.role_arn: required field is missing" in found


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"regoin": "eu-west-1"}, "targets.prod.regoin: unknown field"),
        ({"region": "Europe"}, "targets.prod.region:"),
        ({"role_arn": "SageMakerRole"}, "targets.prod.role_arn:"),
        ({"instance_type": "m5.large"}, "targets.prod.instance_type:"),
        ({"instance_count": 0}, "targets.prod.instance_count:"),
        ({"serverless": {"memory_mb": 1000}}, "targets.prod.serverless.memory_mb: expected one of"),
        ({"serverless": {"max_concurency": 3}}, "targets.prod.serverless.max_concurency: unknown"),
        ({"autoscaling": {"min": 3, "max": 2}}, "max (2) is smaller than min (3)"),
        ({"autoscaling": {"min": 2, "max": 4}}, "instance_count (1) must lie within min..max"),
        (
            {"serverless": {"memory_mb": 2048}, "autoscaling": {"max": 2}},
            "targets.prod.autoscaling: applies to instance endpoints",
        ),
        ({"endpoint_name": "bad_name"}, "targets.prod.endpoint_name:"),
        ({"endpoint_name": "x" * 64}, "targets.prod.endpoint_name:"),
        ({"ecr_repository": "Upper"}, "targets.prod.ecr_repository:"),
        ({"poll_interval": 0}, "targets.prod.poll_interval:"),
        ({"retry_mode": "legacy"}, "targets.prod.retry_mode:"),
        ({"endpoint_urls": {"sqs": "http://x"}}, "targets.prod.endpoint_urls.sqs: unknown field"),
    ],
)
def test_invalid_options_name_the_field(options: dict[str, object], expected: str) -> None:
    found = problems(**{**BASE, **options})
    assert any(expected in line for line in found), found


def test_endpoint_name_override() -> None:
    assert make(endpoint_name="my-endpoint").endpoint == "my-endpoint"


def test_names_fit_sagemaker_rules() -> None:
    rule = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    long_project = "a" + "b" * 39
    endpoint = names.endpoint_name(long_project, "very_long_target_name_for_eu")
    assert rule.match(endpoint), endpoint
    version = "0123456789ab-cdef0123"
    name = names.resource_name(endpoint, version, "abc123")
    assert rule.match(name) and len(name) <= 63, name
    assert name.endswith(f"-{version}-abc123")
    other = names.resource_name(
        names.endpoint_name(long_project, "very_long_target_name_for_us"), version, "abc123"
    )
    assert other != name  # shortened names stay distinct
    assert names.endpoint_name("iris", "prod_eu") == "iris-prod-eu"


def test_strategy_mapping() -> None:
    options = make(termination_wait=120, bake_seconds=600).options
    canary = deployment_config(Strategy.parse("canary:10"), options)
    routing = canary["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 600,
    }
    assert canary["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 120
    linear = deployment_config(Strategy.parse("linear:25", bake_seconds=90), options)
    assert linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 90,
    }
    once = deployment_config(Strategy.parse("all-at-once"), options)
    assert once["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 0,
    }
    assert "AutoRollbackConfiguration" not in once
    alarms = deployment_config(Strategy(), make(alarms=["p99-latency", "5xx"]).options)
    assert alarms["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "p99-latency"}, {"AlarmName": "5xx"}]
    }


def test_route_is_the_runtime_invocation_url() -> None:
    backend = make(region="eu-west-1").route()
    assert backend.url == (
        "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris-prod/invocations"
    )
    assert (backend.auth, backend.region, backend.provider) == ("sigv4", "eu-west-1", "sagemaker")
    private = make(endpoint_urls={"runtime": "https://vpce-1.runtime.sagemaker.local/"}).route()
    assert private.url == "https://vpce-1.runtime.sagemaker.local/endpoints/iris-prod/invocations"


def test_options_model_is_strict_and_frozen() -> None:
    options = SageMakerOptions.model_validate(BASE)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        options.region = "us-east-1"


def test_no_cloud_sdk_at_import() -> None:
    import subprocess
    import sys

    code = "import deployer_aws.provider, sys; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
