"""Issue 15: what SageMaker really accepts and does, and the fake that holds us to it."""

from __future__ import annotations

from typing import Any

import pytest
from aws_fake import ROLE, FakeAws, Script
from aws_model import problems
from aws_support import Recorder, image_ref, release

from deployer.errors import ConfigError, UsageError
from deployer.providers import ProjectInfo, Strategy, Target
from deployer_aws.provider import SageMakerProvider
from deployer_aws.sagemaker import deployment_config

V1, V2 = release("one"), release("two")
SCALING = {"min": 1, "max": 8}


def push(provider: Any, rel: Any, progress: Recorder, strategy: str = "all-at-once") -> Any:
    deployment = provider.deploy(rel, image_ref(rel), Strategy.parse(strategy), progress)
    return deployment, provider.wait(deployment, 120, progress)


def routing(fake: FakeAws) -> dict[str, Any]:
    update = fake.calls("UpdateEndpoint")[-1]
    return update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]


def make(**options: Any) -> SageMakerProvider:
    base = {"provider": "sagemaker", "region": "eu-west-1", "role_arn": ROLE, **options}
    return SageMakerProvider(Target("prod", "sagemaker", base), ProjectInfo("iris"))


# 1. canary and linear sizes are whole instances within SageMaker's bounds


def test_a_canary_one_instance_cannot_hold_is_refused_before_anything_is_created(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider()  # instance_count 1
    push(p, V1, progress)
    created = len(fake.calls("CreateModel"))
    with pytest.raises(UsageError, match="cannot run on 1 instance") as caught:
        p.deploy(V2, image_ref(V2), Strategy.parse("canary:10"), progress)
    assert "0-50%" in str(caught.value) or "1-50%" in str(caught.value)
    assert len(fake.calls("CreateModel")) == created and fake.calls("UpdateEndpoint") == []


def test_sizes_are_whole_instances() -> None:
    options = make(instance_count=4).options
    canary = deployment_config(Strategy.parse("canary:10"), options, 4)
    shift = canary["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert shift["CanarySize"] == {"Type": "INSTANCE_COUNT", "Value": 1}
    linear = deployment_config(Strategy.parse("linear:50"), options, 4)
    shift = linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert shift["LinearStepSize"] == {"Type": "INSTANCE_COUNT", "Value": 2}
    with pytest.raises(UsageError, match="10-50% of the fleet"):
        deployment_config(Strategy.parse("linear:5"), options, 20)
    with pytest.raises(UsageError, match="1-50%"):
        deployment_config(Strategy.parse("canary:60"), options, 10)
    serverless = make(serverless={}).options
    with pytest.raises(UsageError, match="linear step of 10-50%"):
        deployment_config(Strategy.parse("linear:5"), serverless, None)


def test_plan_says_what_deploy_would_refuse_and_what_would_work(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider()  # instance_count 1
    assert p.plan(V1, Strategy.parse("canary:10")).ok  # a new endpoint starts all at once
    push(p, V1, progress)
    before = len(fake.requests)
    plan = p.plan(V2, Strategy.parse("canary:10"))
    (problem,) = plan.problems
    assert problem.startswith("SageMaker endpoint iris-prod: strategy canary:10 cannot run on 1")
    assert "canary:10 fits instance_count 2 (1 of 2 instances, 50%)" in problem
    assert "exactly 10% with instance_count 10" in problem and "all-at-once" in problem
    assert p.plan(V2).ok and p.plan(V2, Strategy()).ok  # no strategy, or all at once
    assert all(r.operation.startswith(("Describe", "List")) for r in fake.requests[before:])
    with pytest.raises(UsageError, match="cannot run on 1 instance"):  # deploy agrees
        p.deploy(V2, image_ref(V2), Strategy.parse("canary:10"), progress)


def test_plan_checks_the_fleet_autoscaling_gave_the_endpoint(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider(autoscaling=SCALING)
    push(p, V1, progress)
    assert not p.plan(V2, Strategy.parse("linear:50")).ok  # 1 instance: 100% per step
    fake.endpoint("iris-prod").production_variants[0]["CurrentInstanceCount"] = 6
    assert p.plan(V2, Strategy.parse("linear:50")).ok  # the update keeps the 6 instances
    (problem,) = p.plan(V2, Strategy.parse("canary:90")).problems
    assert "cannot run on 6 instance(s)" in problem and "use canary:1..canary:50" in problem


def test_a_serverless_plan_checks_the_capacity_percent(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider(serverless={})
    push(p, V1, progress)
    assert p.plan(V2, Strategy.parse("canary:10")).ok
    (problem,) = p.plan(V2, Strategy.parse("linear:5")).problems
    assert "linear step of 10-50% (got 5%)" in problem
    (problem,) = p.plan(V2, Strategy.parse("linear:10", 3600)).problems
    assert "more than the 28800s MaximumExecutionTimeoutInSeconds allows" in problem


# 3. autoscaling comes back after an update SageMaker rolled back


def test_autoscaling_is_restored_after_a_rolled_back_update(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    push(provider(instance_count=2, autoscaling=SCALING), V1, progress)
    bigger = provider(instance_count=2, instance_type="ml.c5.xlarge", autoscaling=SCALING)
    fake.script_update(Script(["Updating", "RollingBack"], "rollback", "ping check failed"))
    _, status = push(bigger, V2, progress)
    assert status.state == "failed" and "rolled back automatically" in status.reason
    assert fake.calls("DeregisterScalableTarget")  # released for the instance type change
    from deployer_aws import autoscaling

    target = autoscaling.current(bigger.aws, "iris-prod")
    assert target is not None and (target["MinCapacity"], target["MaxCapacity"]) == (1, 8)
    assert "autoscaling registered again" in progress.text


# 4. an update that outlasts the push timeout ends at a known version


def test_an_update_past_its_time_is_rolled_back_by_sagemaker(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider(bake_seconds=60)
    push(p, V1, progress)
    fake.script_update(Script(["Updating"], None))  # would never finish by itself
    fake.speed = 100.0  # cloud seconds per second: the 660 s limit passes in 6.6 s
    deployment = p.deploy(V2, image_ref(V2), Strategy.parse("all-at-once", 60), progress)
    policy = fake.calls("UpdateEndpoint")[-1]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["MaximumExecutionTimeoutInSeconds"] == 660  # bake + provisioning
    status = p.wait(deployment, 0.2, progress)
    assert "rolls it back once its MaximumExecutionTimeoutInSeconds passes" in progress.text
    assert status.state == "failed" and status.version == V1.version
    assert "MaximumExecutionTimeoutInSeconds" in status.reason
    now = p.status()
    assert now.healthy and now.version == V1.version


def test_a_strategy_longer_than_sagemaker_allows_is_refused() -> None:
    options = make(instance_count=10).options
    with pytest.raises(UsageError, match="MaximumExecutionTimeoutInSeconds"):
        deployment_config(Strategy.parse("linear:10", 3600), options, 10, allowance=600)


# 6. an autoscaled fleet keeps its size through an update


def test_update_of_an_autoscaled_endpoint_keeps_its_capacity(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider(autoscaling=SCALING)
    push(p, V1, progress)
    fake.endpoint("iris-prod").production_variants[0]["CurrentInstanceCount"] = 6  # scaled out
    _, status = push(p, V2, progress, "linear:50")
    assert status.healthy, status.reason
    update = fake.calls("UpdateEndpoint")[-1]
    assert update["RetainAllVariantProperties"] is True
    assert routing(fake)["LinearStepSize"] == {"Type": "INSTANCE_COUNT", "Value": 3}
    assert fake.endpoint("iris-prod").production_variants[0]["CurrentInstanceCount"] == 6


# 7. destroy checks ownership before touching autoscaling


def test_destroy_of_another_teams_endpoint_leaves_its_autoscaling(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    push(provider(autoscaling=SCALING), V1, progress)
    stranger = provider(target="other", endpoint_name="iris-prod")
    with pytest.raises(UsageError, match="was not created by deployer"):
        stranger.destroy(progress)
    assert fake.calls("DeregisterScalableTarget") == []


# 8. alarms are watched, and at most ten


def test_alarms_bake_an_all_at_once_update(fake: FakeAws, provider: Any, progress) -> None:
    p = provider(alarms=["iris-5xx"], bake_seconds=120)
    push(p, V1, progress)
    push(p, V2, progress)
    assert routing(fake) == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 120}
    back = p.rollback(progress)  # a rollback is not watched by the alarms that caused it
    assert back.version == V1.version
    assert "AutoRollbackConfiguration" not in fake.calls("UpdateEndpoint")[-1]["DeploymentConfig"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"alarms": [f"a{i}" for i in range(11)]}, "at most 10 alarms"),
        ({"alarms": ["a"], "bake_seconds": 0}, "set bake_seconds above 0"),
    ],
)
def test_alarm_options_sagemaker_would_refuse(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make(**options)
    assert expected in "\n".join(caught.value.problems)


# 9. per-cloud limits


def test_route_in_a_china_region() -> None:
    backend = make(region="cn-north-1", role_arn=ROLE.replace(":aws:", ":aws-cn:")).route()
    assert backend.url == (
        "https://runtime.sagemaker.cn-north-1.amazonaws.com.cn/endpoints/iris-prod/invocations"
    )


def test_declared_limits_are_sagemakers() -> None:
    real_time, serverless = make(), make(serverless={})
    assert real_time.request_timeout_seconds == serverless.request_timeout_seconds == 60
    assert real_time.max_request_bytes == 6 * 1024 * 1024
    assert serverless.max_request_bytes == 4 * 1024 * 1024
    assert real_time.rollout_allowance_seconds == 600
    assert serverless.rollout_allowance_seconds == 300


def test_serverless_refuses_a_body_over_4_mb_up_front(fake: FakeAws, provider: Any) -> None:
    p = provider(serverless={})
    with pytest.raises(UsageError, match="larger than the 4194304 bytes"):
        p.invoke(b"x" * (4 * 1024 * 1024 + 1), "application/json")
    assert fake.calls("InvokeEndpoint") == []


# the strict fake


def test_the_fake_refuses_what_sagemaker_refuses(fake: FakeAws, provider: Any) -> None:
    # botocore's model: at most 10 alarms (botocore's own validator skips maxima)
    eleven = {"Alarms": [{"AlarmName": f"a{i}"} for i in range(11)]}
    body = {
        "EndpointName": "iris-prod",
        "EndpointConfigName": "c",
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "SOMETIMES", "WaitIntervalInSeconds": 0}
            },
            "AutoRollbackConfiguration": eleven,
        },
    }
    found = "\n".join(problems("sagemaker", "UpdateEndpoint", body))
    assert "above the maximum 10" in found and "'SOMETIMES' is not one of" in found
    assert "does not match" in "\n".join(
        problems(
            "sagemaker", "CreateEndpoint", {"EndpointName": "bad_name", "EndpointConfigName": "c"}
        )
    )
    # and on the wire, through the real boto3: a 10% canary of one instance
    from botocore.exceptions import ClientError

    p = provider()
    push(p, V1, Recorder())
    config = fake.endpoint("iris-prod").endpoint_config_name
    canary = {"Type": "CANARY", "WaitIntervalInSeconds": 0}
    canary["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": 10}  # type: ignore[assignment]
    with pytest.raises(ClientError, match="CanarySize: 10% of 1 instance"):
        p.aws.client("sagemaker").update_endpoint(
            EndpointName="iris-prod",
            EndpointConfigName=config,
            DeploymentConfig={"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": canary}},
        )
