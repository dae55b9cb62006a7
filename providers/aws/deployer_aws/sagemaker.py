"""SageMaker resources of one target: models, endpoint configs, the endpoint, and their tags."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from deployer.providers import Strategy, UsageError
from deployer_aws import names
from deployer_aws.aws import Aws
from deployer_aws.options import SageMakerOptions

NOT_FOUND = "Could not find"
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


@dataclass(frozen=True)
class Live:
    """The endpoint as SageMaker describes it, with the version its config is tagged with."""

    name: str
    arn: str
    status: str
    config: str
    version: str | None
    failure_reason: str | None
    tags: dict[str, str]
    pending_config: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    config_tags: dict[str, str] = field(default_factory=dict)  # the live config's tags

    @property
    def previous_config(self) -> str | None:
        return self.tags.get(names.TAG_PREVIOUS_CONFIG) or None


@dataclass(frozen=True)
class Desired:
    """The model and endpoint config a release needs, named after their content."""

    name: str  # shared by the model and the endpoint config
    version: str
    container: dict[str, Any]
    variant: dict[str, Any]
    capture: dict[str, Any] = field(default_factory=dict)  # DataCaptureConfig ({}: none)


def desired(
    options: SageMakerOptions,
    endpoint: str,
    version: str,
    image_ref: str,
    repository: str,
    capture: dict[str, Any] | None = None,
) -> Desired:
    """What serves ``version``. The name hashes the settings, and the repository rather than
    the digest: the version already identifies the image, and plan() knows no digest yet.
    ``capture`` (the DataCaptureConfig) is hashed only when set: names without it stay."""
    container: dict[str, Any] = {"Image": image_ref, "Mode": "SingleModel"}
    if options.environment:
        container["Environment"] = dict(options.environment)
    variant: dict[str, Any] = {"VariantName": names.VARIANT}
    if options.serverless is not None:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": options.serverless.memory_mb,
            "MaxConcurrency": options.serverless.max_concurrency,
        }
    else:
        variant["InstanceType"] = options.instance_type
        variant["InitialInstanceCount"] = options.instance_count
        variant["InitialVariantWeight"] = 1.0
        if options.startup_health_timeout is not None:
            variant["ContainerStartupHealthCheckTimeoutInSeconds"] = options.startup_health_timeout
    settings: dict[str, Any] = {
        "repository": repository,
        "environment": container.get("Environment", {}),
        "role": options.role_arn,
        "variant": variant,
    }
    if capture:
        settings["capture"] = capture
    spec = names.spec_hash(settings)
    name = names.resource_name(endpoint, version, spec)
    return Desired(name, version, container, variant, dict(capture or {}))


# SageMaker's documented limits of a blue/green traffic shift (TrafficRoutingConfig).
MAX_CANARY_PERCENT = 50
LINEAR_STEP_PERCENT = (10, 50)
MAX_EXECUTION_SECONDS = (600, 28800)  # BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds
MAX_ALARMS = 10  # AutoRollbackConfiguration.Alarms (botocore does not check the maximum)


def deployment_config(
    strategy: Strategy,
    options: SageMakerOptions,
    fleet: int | None = None,
    alarms: bool = True,
    allowance: float = 0.0,
) -> dict[str, Any]:
    """The UpdateEndpoint DeploymentConfig for a strategy: blue/green traffic shifting.

    ``fleet`` is the new fleet's instance count (None: serverless, sized in capacity
    percent). SageMaker shifts whole instances: a canary is at most 50% of the fleet, a
    linear step 10-50%; a strategy the fleet cannot express is refused here, before any
    resource is created. The bake falls back to ``options.bake_seconds`` for canary/linear
    and, when alarms are set, for all-at-once too (alarms are watched only while baking).
    ``MaximumExecutionTimeoutInSeconds`` bounds the whole update: past it SageMaker rolls
    the update back by itself. ``allowance`` is the provisioning time of one step.
    """
    bake = strategy.bake_seconds
    watch = bool(options.alarms) and alarms
    if not bake and (strategy.kind != "all-at-once" or watch):
        bake = options.bake_seconds
    wait = min(int(bake), 3600)
    routing: dict[str, Any] = {"Type": "ALL_AT_ONCE"}
    steps = 1
    if strategy.kind == "canary":
        size = _size(strategy, fleet, (1, MAX_CANARY_PERCENT))
        routing = {"Type": "CANARY", "CanarySize": size}
        steps = 2
    elif strategy.kind == "linear":
        size = _size(strategy, fleet, LINEAR_STEP_PERCENT)
        routing = {"Type": "LINEAR", "LinearStepSize": size}
        steps = -(-(fleet or 100) // size["Value"])
    routing["WaitIntervalInSeconds"] = wait
    needed = int(steps * (wait + allowance) + options.termination_wait)
    low, high = MAX_EXECUTION_SECONDS
    if needed > high:
        raise UsageError(
            f"strategy {strategy} with a {wait}s bake needs about {needed}s on SageMaker, "
            f"more than the {high}s MaximumExecutionTimeoutInSeconds allows",
            hint="use fewer steps (a larger percentage) or a shorter --bake",
        )
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        "TerminationWaitInSeconds": options.termination_wait,
        "MaximumExecutionTimeoutInSeconds": max(needed, low),
    }
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if watch:
        config["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": alarm} for alarm in options.alarms]
        }
    return config


def _size(strategy: Strategy, fleet: int | None, bounds: tuple[int, int]) -> dict[str, Any]:
    """The canary or linear step as SageMaker's CapacitySize, or a UsageError."""
    low, high = bounds
    what = "canary" if strategy.kind == "canary" else "linear step"
    if fleet is None:  # serverless: capacity percent
        if not low <= strategy.percent <= high:
            raise UsageError(
                f"strategy {strategy}: SageMaker takes a {what} of {low}-{high}% "
                f"(got {strategy.percent}%)"
            )
        return {"Type": "CAPACITY_PERCENT", "Value": strategy.percent}
    count = _instances(strategy.percent, fleet)
    if not _fits(count, fleet, bounds):
        raise UsageError(
            f"strategy {strategy} cannot run on {fleet} instance(s): SageMaker shifts whole "
            f"instances and takes a {what} of {low}-{high}% of the fleet "
            f"({strategy.percent}% of {fleet} shifts {count} of {fleet}, "
            f"{count * 100 // fleet}%)",
            hint=what_works(strategy, fleet),
        )
    return {"Type": "INSTANCE_COUNT", "Value": count}


def _instances(percent: int, fleet: int) -> int:
    """The whole instances a ``percent`` share of ``fleet`` shifts (at least one)."""
    return max(1, fleet * percent // 100)


def _fits(count: int, fleet: int, bounds: tuple[int, int]) -> bool:
    low, high = bounds
    return low * fleet <= count * 100 <= high * fleet


def what_works(strategy: Strategy, fleet: int) -> str:
    """What would run instead of ``strategy`` (canary or linear) on ``fleet`` instances:
    the percentages that fit this fleet, and the fleets this percentage fits."""
    low, high = (1, MAX_CANARY_PERCENT) if strategy.kind == "canary" else LINEAR_STEP_PERCENT
    kind, percent = strategy.kind, strategy.percent
    fitting = [p for p in range(low, high + 1) if _fits(_instances(p, fleet), fleet, (low, high))]
    ways = [
        f"use {kind}:{fitting[0]}..{kind}:{fitting[-1]} on {fleet} instance(s)"
        if fitting
        else f"no {kind}:N fits {fleet} instance(s)"
    ]
    if low <= percent <= high:
        smallest = next(n for n in range(2, 101) if _fits(_instances(percent, n), n, (low, high)))
        shifts = _instances(percent, smallest)
        exact = 100 // math.gcd(100, percent)
        fits = (
            f"{strategy} fits instance_count {smallest} ({shifts} of {smallest} "
            f"instances, {shifts * 100 // smallest}%)"
        )
        if exact > smallest:
            fits += f" and is exactly {percent}% with instance_count {exact}"
        ways.append(fits)
    ways.append("all-at-once fits any fleet")
    return "; ".join(ways)


class SageMaker:
    """The SageMaker API calls a target needs, each naming its resource in errors."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def _call(self, operation: str, resource: str, absent: bool = False, **params: Any) -> Any:
        return self.aws.call(
            "sagemaker", operation, resource, absent=NOT_FOUND if absent else None, **params
        )

    # -- reading -----------------------------------------------------------------------

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        return self._call("describe_endpoint", f"endpoint {name}", True, EndpointName=name)

    def describe_config(self, name: str) -> dict[str, Any] | None:
        return self._call(
            "describe_endpoint_config", f"endpoint config {name}", True, EndpointConfigName=name
        )

    def describe_model(self, name: str) -> dict[str, Any] | None:
        return self._call("describe_model", f"model {name}", True, ModelName=name)

    def tags(self, arn: str, resource: str) -> dict[str, str]:
        tags: list[dict[str, str]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"ResourceArn": arn}
            if token:
                params["NextToken"] = token
            page = self._call("list_tags", resource, True, **params) or {}
            tags.extend(page.get("Tags", []))
            token = page.get("NextToken")
            if not token:
                return names.tag_map(tags)

    def config_version(self, config: str) -> str | None:
        """The ``deployer-version`` tag of an endpoint config (None if it has none or is gone)."""
        return self.config_tags(config).get(names.TAG_VERSION)

    def config_tags(self, config: str) -> dict[str, str]:
        """An endpoint config's tags ({} when it is gone)."""
        described = self.describe_config(config)
        if described is None:
            return {}
        return self.tags(described["EndpointConfigArn"], f"endpoint config {config}")

    def live(self, name: str) -> Live | None:
        described = self.describe_endpoint(name)
        if described is None:
            return None
        config = described.get("EndpointConfigName", "")
        pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        config_tags = self.config_tags(config) if config else {}
        return Live(
            name=name,
            arn=described["EndpointArn"],
            status=described.get("EndpointStatus", ""),
            config=config,
            version=config_tags.get(names.TAG_VERSION),
            failure_reason=described.get("FailureReason") or None,
            tags=self.tags(described["EndpointArn"], f"endpoint {name}"),
            pending_config=pending,
            raw=described,
            config_tags=config_tags,
        )

    def owned(self, kind: str, prefix: str, project: str, target: str) -> Iterator[str]:
        """Names of models or endpoint configs (``kind``) of this project and target."""
        operation, key, name_key, arn_key = {
            "model": ("list_models", "Models", "ModelName", "ModelArn"),
            "config": (
                "list_endpoint_configs",
                "EndpointConfigs",
                "EndpointConfigName",
                "EndpointConfigArn",
            ),
        }[kind]
        token: str | None = None
        while True:
            params: dict[str, Any] = {"NameContains": prefix, "MaxResults": 100}
            if token:
                params["NextToken"] = token
            page = self._call(operation, f"{kind}s named {prefix}*", **params) or {}
            for item in page.get(key, []):
                name = item[name_key]
                if not name.startswith(prefix):
                    continue
                tags = self.tags(item[arn_key], f"{kind} {name}")
                if tags.get(names.TAG_PROJECT) == project and tags.get(names.TAG_TARGET) == target:
                    yield name
            token = page.get("NextToken")
            if not token:
                return

    # -- writing -----------------------------------------------------------------------

    def create_model(self, want: Desired, role_arn: str, tags: list[dict[str, str]]) -> None:
        self._call(
            "create_model",
            f"model {want.name}",
            ModelName=want.name,
            PrimaryContainer=want.container,
            ExecutionRoleArn=role_arn,
            Tags=tags,
        )

    def create_config(self, want: Desired, tags: list[dict[str, str]]) -> None:
        variant = {**want.variant, "ModelName": want.name}
        extra: dict[str, Any] = {"DataCaptureConfig": want.capture} if want.capture else {}
        self._call(
            "create_endpoint_config",
            f"endpoint config {want.name}",
            EndpointConfigName=want.name,
            ProductionVariants=[variant],
            Tags=tags,
            **extra,
        )

    def create_endpoint(self, name: str, config: str, tags: list[dict[str, str]]) -> None:
        self._call(
            "create_endpoint",
            f"endpoint {name}",
            EndpointName=name,
            EndpointConfigName=config,
            Tags=tags,
        )

    def update_endpoint(
        self, name: str, config: str, deployment: dict[str, Any], retain: bool = False
    ) -> None:
        """``retain``: keep the variant's current instance count (set by autoscaling)."""
        self._call(
            "update_endpoint",
            f"endpoint {name}",
            EndpointName=name,
            EndpointConfigName=config,
            RetainAllVariantProperties=retain,
            DeploymentConfig=deployment,
        )

    def add_tags(self, arn: str, resource: str, tags: dict[str, str]) -> None:
        pairs = [{"Key": k, "Value": v} for k, v in tags.items()]
        self._call("add_tags", resource, ResourceArn=arn, Tags=pairs)

    def delete_endpoint(self, name: str) -> bool:
        answer = self._call("delete_endpoint", f"endpoint {name}", True, EndpointName=name)
        return answer is not None

    def delete_config(self, name: str) -> bool:
        answer = self._call(
            "delete_endpoint_config", f"endpoint config {name}", True, EndpointConfigName=name
        )
        return answer is not None

    def delete_model(self, name: str) -> bool:
        answer = self._call("delete_model", f"model {name}", True, ModelName=name)
        return answer is not None
