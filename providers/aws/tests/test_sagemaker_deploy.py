"""Deploy, update, wait, rollback and destroy against the fake AWS (real boto3 on the wire)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_fake import FakeAws, Script
from aws_support import Recorder, image_ref, release

from deployer.errors import DeployerError, UsageError
from deployer.providers import Deployment, Strategy
from deployer_aws import names

V1, V2, V3 = release("one"), release("two"), release("three")


def push(provider: Any, rel: Any, progress: Recorder, strategy: str = "all-at-once") -> Any:
    deployment = provider.deploy(rel, image_ref(rel), Strategy.parse(strategy), progress)
    return deployment, provider.wait(deployment, 120, progress)


def config_names(fake: FakeAws) -> set[str]:
    return set(fake.sagemaker.endpoint_configs)


def test_first_deploy_creates_tagged_resources(fake: FakeAws, provider: Any, progress: Recorder):
    p = provider()
    deployment, status = push(p, V1, progress)
    assert deployment.changed and deployment.previous_version is None
    assert status.healthy and status.version == V1.version
    assert status.url == f"{fake.url}/endpoints/iris-prod/invocations"
    assert "endpoint iris-prod: Creating" in progress.text

    (model,) = fake.calls("CreateModel")
    assert model["PrimaryContainer"]["Image"] == image_ref(V1)
    assert model["ExecutionRoleArn"].endswith(":role/SageMakerExecution")
    (config,) = fake.calls("CreateEndpointConfig")
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": model["ModelName"],
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 1.0,
        }
    ]
    (endpoint,) = fake.calls("CreateEndpoint")
    assert endpoint["EndpointName"] == "iris-prod"
    assert V1.version in model["ModelName"] and len(model["ModelName"]) <= 63
    for call in (model, config, endpoint):
        tags = names.tag_map(call["Tags"])
        assert tags == {
            "deployer-project": "iris",
            "deployer-target": "prod",
            "deployer-version": V1.version,
        }
    assert fake.calls("UpdateEndpoint") == []


def test_redeploy_of_the_live_version_changes_nothing(fake, provider, progress):
    p = provider()
    push(p, V1, progress)
    writes_before = _writes(fake)
    again = p.deploy(V1, image_ref(V1), Strategy(), progress)
    assert again == Deployment("prod", V1.version, V1.version, False, again.details)
    assert p.wait(again, 120, progress).healthy
    assert _writes(fake) == writes_before
    assert "already serves" in progress.text


def _writes(fake: FakeAws) -> list[str]:
    reads = ("Describe", "List", "Get")
    return [r.operation for r in fake.requests if not r.operation.startswith(reads)]


@pytest.mark.parametrize(
    ("strategy", "routing", "limit"),
    [
        # alarms are watched only while baking: all-at-once bakes too when alarms are set
        ("all-at-once", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 45}, 675),
        (
            "canary:10",
            {
                "Type": "CANARY",
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                "WaitIntervalInSeconds": 45,
            },
            2 * 645 + 30,
        ),
        (
            "linear:25",
            {
                "Type": "LINEAR",
                "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                "WaitIntervalInSeconds": 45,
            },
            4 * 645 + 30,
        ),
    ],
)
def test_update_maps_each_strategy_to_blue_green(
    fake, provider, progress, strategy, routing, limit
):
    p = provider(bake_seconds=45, termination_wait=30, alarms=["iris-5xx"], instance_count=4)
    push(p, V1, progress)
    deployment, status = push(p, V2, progress, strategy)
    assert deployment.changed and deployment.previous_version == V1.version
    assert status.healthy and status.version == V2.version
    (update,) = fake.calls("UpdateEndpoint")
    assert update["EndpointName"] == "iris-prod"
    assert update["EndpointConfigName"] == deployment.details["endpoint_config"]
    assert update["RetainAllVariantProperties"] is False
    assert update["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": 30,
            # (bake + 600 s provisioning) per step + termination wait
            "MaximumExecutionTimeoutInSeconds": limit,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "iris-5xx"}]},
    }
    assert fake.endpoint("iris-prod").last_deployment_config == update["DeploymentConfig"]
    assert f"{V1.version} -> {V2.version} ({strategy})" in progress.text
    # the endpoint now names the previous config, which is kept for rollback
    tags = names.tag_map(fake.endpoint("iris-prod").tags)
    assert tags["deployer-version"] == V2.version
    assert tags["deployer-previous-config"] == deployment.details["previous_config"]
    assert deployment.details["previous_config"] in config_names(fake)


def test_failed_update_reports_the_reason_and_the_old_version_serves(fake, provider, progress):
    p = provider(instance_count=2)
    push(p, V1, progress)
    reason = "The primary container for production variant AllTraffic did not pass the ping check."
    fake.script_update(Script(["Updating", "Updating", "RollingBack"], "rollback", reason))
    _, status = push(p, V2, progress, "canary:10")
    assert not status.healthy and status.state == "failed"
    assert reason in status.reason
    assert "rolled back automatically" in status.reason
    assert f"{V1.version} keeps serving" in status.reason
    assert "SageMaker is rolling back the update" in progress.text
    now = p.status()
    assert now.healthy and now.version == V1.version
    assert now.details["last_update_failure"] == reason
    # the failed version's tags did not move the endpoint
    assert names.tag_map(fake.endpoint("iris-prod").tags)["deployer-version"] == V1.version
    # the previous version still answers through the runtime
    fake.model_answers.append((200, b'{"predictions": [0, 0]}', "application/json"))
    assert p.invoke(b"[[0,0,0,0],[0,0,0,0]]", "application/json").status == 200


def test_failed_creation_reports_the_reason(fake, provider, progress):
    p = provider()
    reason = "Failed to pull image: access denied for the execution role"
    fake.script_create(Script(["Creating"], "Failed", reason))
    _, status = push(p, V1, progress)
    assert status.state == "failed" and reason in status.reason
    assert p.status().state == "failed" and reason in p.status().reason
    # SageMaker only allows deleting a Failed endpoint: the next push recreates it
    deployment, status = push(p, V2, progress)
    assert status.healthy and status.version == V2.version
    assert deployment.previous_version is None
    assert "allows only deleting it" in progress.text
    assert [c["EndpointName"] for c in fake.calls("DeleteEndpoint")] == ["iris-prod"]


def test_update_rollback_failed(fake, provider, progress):
    p = provider(instance_count=2)
    push(p, V1, progress)
    fake.script_update(Script(["Updating", "RollingBack"], "UpdateRollbackFailed", "alarm fired"))
    _, status = push(p, V2, progress, "linear:50")
    assert status.state == "failed"
    assert "automatic rollback failed too: alarm fired" in status.reason


def test_timeout_says_how_long_and_the_last_state(fake, provider, progress):
    p = provider()
    push(p, V1, progress)
    fake.script_update(Script(["Updating"], None))  # never finishes
    deployment = p.deploy(V2, image_ref(V2), Strategy(), progress)
    # the cloud never settles, not even past SageMaker's MaximumExecutionTimeoutInSeconds
    deployment.details["update_started_at"] -= 100_000
    status = p.wait(deployment, 0.3, progress)
    assert not status.healthy
    assert status.reason.startswith("timed out after")
    assert "limit 0.3s" in status.reason and "last state: Updating" in status.reason
    assert status.version == V1.version
    # a second push while it is still updating to the same config waits on it
    again = p.deploy(V2, image_ref(V2), Strategy(), progress)
    assert again.changed and "already Updating" in progress.text
    with pytest.raises(DeployerError, match="is Updating; it accepts no update now"):
        p.deploy(V3, image_ref(V3), Strategy(), progress)


def test_rollback_returns_to_the_previous_config(fake, provider, progress):
    p = provider()
    push(p, V1, progress)
    with pytest.raises(UsageError, match="no previous version"):
        p.rollback(progress)
    first, _ = push(p, V2, progress)
    back = p.rollback(progress)
    assert back.version == V1.version and back.previous_version == V2.version
    update = fake.calls("UpdateEndpoint")[-1]
    assert update["EndpointConfigName"] == first.details["previous_config"]
    assert (
        update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"]
        == "ALL_AT_ONCE"
    )
    assert p.status().version == V1.version
    # rolling back again returns to V2: both configs are kept
    assert p.rollback(progress).version == V2.version


def test_rollback_failure_is_reported(fake, provider, progress):
    p = provider()
    push(p, V1, progress)
    push(p, V2, progress)
    fake.script_update(Script(["Updating"], "rollback", "insufficient capacity for ml.m5.large"))
    with pytest.raises(DeployerError, match="insufficient capacity"):
        p.rollback(progress)


def test_only_the_previous_config_is_kept(fake, provider, progress):
    p = provider()
    d1, _ = push(p, V1, progress)
    d2, _ = push(p, V2, progress)
    d3, _ = push(p, V3, progress)
    kept = {d2.details["endpoint_config"], d3.details["endpoint_config"]}
    assert config_names(fake) == kept
    assert set(fake.sagemaker._models) == kept
    assert f"pruned endpoint config {d1.details['endpoint_config']}" in progress.text


def test_settings_change_makes_a_new_config_for_the_same_version(fake, provider, progress):
    push(provider(), V1, progress)
    deployment, status = push(provider(instance_count=2), V1, progress)
    assert deployment.changed and status.healthy
    (update,) = fake.calls("UpdateEndpoint")
    config = fake.sagemaker.endpoint_configs[update["EndpointConfigName"]]
    assert config.production_variants[0]["InitialInstanceCount"] == 2


def test_serverless_endpoint_config(fake, provider, progress):
    p = provider(serverless={"memory_mb": 3072, "max_concurrency": 8})
    _, status = push(p, V1, progress)
    assert status.healthy
    (config,) = fake.calls("CreateEndpointConfig")
    variant = config["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 8}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant


def test_autoscaling_registered_and_deregistered(fake, provider, progress):
    p = provider(instance_count=2, autoscaling={"min": 1, "max": 4, "target_invocations": 250})
    push(p, V1, progress)
    (register,) = fake.calls("RegisterScalableTarget")
    assert register == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/iris-prod/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 1,
        "MaxCapacity": 4,
    }
    (policy,) = fake.calls("PutScalingPolicy")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 250
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    # unchanged settings: nothing registered again
    push(p, V2, progress)
    assert len(fake.calls("RegisterScalableTarget")) == 1
    # an instance type change deregisters before the update and registers after it
    bigger = provider(
        instance_count=2, instance_type="ml.c5.xlarge", autoscaling={"min": 1, "max": 4}
    )
    push(bigger, V2, progress)
    operations = [r.operation for r in fake.requests]
    deregister = operations.index("DeregisterScalableTarget")
    assert deregister < len(operations) - 1 - operations[::-1].index("UpdateEndpoint")
    assert len(fake.calls("RegisterScalableTarget")) == 2
    removed = bigger.destroy(progress)
    assert "scalable target endpoint/iris-prod/variant/AllTraffic" in removed
    assert len(fake.calls("DeregisterScalableTarget")) == 2


def test_destroy_removes_exactly_this_target(fake, provider, progress):
    p = provider()
    other = provider(target="staging")
    push(p, V1, progress)
    push(p, V2, progress)
    push(other, V1, progress)
    removed = p.destroy(progress)
    assert "endpoint iris-prod" in removed
    assert sum(line.startswith("endpoint config ") for line in removed) == 2
    assert sum(line.startswith("model ") for line in removed) == 2
    assert set(fake.sagemaker.endpoints) == {"iris-staging"}
    assert all(name.startswith("iris-staging-") for name in config_names(fake))
    assert p.destroy(progress) == []  # idempotent
    assert p.status().state == "absent"
    assert other.status().healthy


def test_destroy_deletes_the_ecr_repository_only_when_asked(fake, provider, progress):
    keep = provider()
    from deployer_aws import registry

    registry.ensure_repository(keep.aws, "iris", "iris", "prod", progress)
    assert keep.destroy(progress) == []
    assert fake.calls("DeleteRepository") == []
    drop = provider(keep_ecr_repository_on_destroy=False)
    assert drop.destroy(progress) == ["ECR repository iris"]
    assert fake.calls("DeleteRepository")[0]["force"] is True


def test_refuses_an_endpoint_it_did_not_create(fake, provider, progress):
    p = provider()
    push(p, V1, progress)
    stranger = provider(target="other", endpoint_name="iris-prod")
    with pytest.raises(UsageError, match="was not created by deployer"):
        stranger.deploy(V2, image_ref(V2), Strategy(), progress)
    with pytest.raises(UsageError, match="endpoint_name"):
        stranger.destroy(progress)


def test_plan_reads_only(fake, provider, progress):
    p = provider()
    first = p.plan(V1)
    actions = {(c.action, c.resource.split(" ")[0]) for c in first.changes}
    assert ("create", "ECR") in actions and ("create", "endpoint") in actions
    assert _writes(fake) == []
    push(p, V1, progress)
    assert not any(c.action != "keep" for c in p.plan(V1).changes if "endpoint" in c.resource)
    second = p.plan(V2)
    assert any(c.action == "update" and c.resource == "endpoint iris-prod" for c in second.changes)


def test_orchestrator_rolls_back_when_the_smoke_test_fails(fake, provider, progress):
    """push_all (the engine of `deployer push`) calls our rollback after a bad smoke test."""
    from deployer.orchestrate import Journal, push_all

    p = provider(instance_count=2)
    push(p, V1, progress)
    p.publish = lambda image, _progress: image_ref(V2)  # no Docker here: the ref is given
    fake.model_answers.append((500, b'{"error": "RuntimeError: model broken"}', "application/json"))
    journal = Journal()
    (result,) = push_all({"prod": p}, V2, Strategy.parse("canary:20"), "rollback", 10, journal)
    assert result.outcome == "rolled back", result
    assert "smoke prediction answered 500" in (result.error or "")
    assert result.previous_version == V1.version and result.live_version == V1.version
    assert p.status().version == V1.version
    updates = fake.calls("UpdateEndpoint")
    assert [
        u["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"]
        for u in updates
    ] == ["CANARY", "ALL_AT_ONCE"]
