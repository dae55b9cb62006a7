"""application-autoscaling of the endpoint's variant: target tracking on invocations."""

from __future__ import annotations

from typing import Any

from deployer_aws import names
from deployer_aws.aws import Aws
from deployer_aws.options import Autoscaling

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
POLICY = "deployer-invocations-per-instance"
SERVICE = "application-autoscaling"


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{names.VARIANT}"


def _target(endpoint: str) -> dict[str, str]:
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint),
        "ScalableDimension": DIMENSION,
    }


def current(aws: Aws, endpoint: str) -> dict[str, Any] | None:
    """The registered scalable target of the endpoint's variant, or None."""
    answer = aws.call(
        SERVICE,
        "describe_scalable_targets",
        f"scalable target {resource_id(endpoint)}",
        ServiceNamespace=NAMESPACE,
        ResourceIds=[resource_id(endpoint)],
        ScalableDimension=DIMENSION,
    )
    targets = (answer or {}).get("ScalableTargets") or []
    return dict(targets[0]) if targets else None


def _policy(aws: Aws, endpoint: str) -> dict[str, Any] | None:
    answer = aws.call(
        SERVICE,
        "describe_scaling_policies",
        f"scaling policy {POLICY}",
        PolicyNames=[POLICY],
        **_target(endpoint),
    )
    policies = (answer or {}).get("ScalingPolicies") or []
    return dict(policies[0]) if policies else None


def _policy_config(scaling: Autoscaling) -> dict[str, Any]:
    return {
        "TargetValue": float(scaling.target_invocations),
        "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
        "ScaleInCooldown": scaling.scale_in_cooldown,
        "ScaleOutCooldown": scaling.scale_out_cooldown,
    }


def in_sync(aws: Aws, endpoint: str, scaling: Autoscaling) -> bool:
    """True when the registered target and policy already match ``scaling``."""
    target = current(aws, endpoint)
    if target is None or (target["MinCapacity"], target["MaxCapacity"]) != (
        scaling.min,
        scaling.max,
    ):
        return False
    policy = _policy(aws, endpoint)
    if policy is None:
        return False
    have = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
    want = _policy_config(scaling)
    return all(have.get(key) == value for key, value in want.items())


def ensure(aws: Aws, endpoint: str, scaling: Autoscaling) -> bool:
    """Register the variant and its target-tracking policy; False when nothing changed."""
    if in_sync(aws, endpoint, scaling):
        return False
    resource = f"scalable target {resource_id(endpoint)}"
    aws.call(
        SERVICE,
        "register_scalable_target",
        resource,
        MinCapacity=scaling.min,
        MaxCapacity=scaling.max,
        **_target(endpoint),
    )
    aws.call(
        SERVICE,
        "put_scaling_policy",
        resource,
        PolicyName=POLICY,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=_policy_config(scaling),
        **_target(endpoint),
    )
    return True


def remove(aws: Aws, endpoint: str) -> bool:
    """Deregister the variant (its policies go with it); False when it was not registered."""
    if current(aws, endpoint) is None:
        return False
    aws.call(
        SERVICE,
        "deregister_scalable_target",
        f"scalable target {resource_id(endpoint)}",
        absent="ObjectNotFoundException",
        **_target(endpoint),
    )
    return True
