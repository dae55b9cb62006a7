"""Live gates on SageMaker: a CloudWatch baseline, two alarms in the update's
AutoRollbackConfiguration, and the alarm that fired named when SageMaker rolls back
(real boto3 against moto's CloudWatch and the SageMaker fake, at the wire)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from aws_fake import REGION, FakeAws, Script
from aws_support import Recorder, image_ref, release

from deployer.errors import UsageError
from deployer.providers import Strategy
from deployer.providers.live import LiveRules

V1, V2 = release("one"), release("two")
ERRORS = "deployer-iris-prod-live-5xx-rate"
LATENCY = "deployer-iris-prod-live-p99-latency"
DIMENSIONS = [
    {"Name": "EndpointName", "Value": "iris-prod"},
    {"Name": "VariantName", "Value": "AllTraffic"},
]


def cloudwatch(fake: FakeAws) -> Any:
    return boto3.client("cloudwatch", region_name=REGION, endpoint_url=fake.url)


def put_baseline(fake: FakeAws, invocations: int = 200, errors: int = 2) -> None:
    """What the live variant served two minutes ago: 1% errors, p99 20 ms (in us)."""
    when = datetime.now(timezone.utc) - timedelta(minutes=2)
    data: list[dict[str, Any]] = [
        {"MetricName": "Invocations", "Value": invocations},
        {"MetricName": "Invocation5XXErrors", "Value": errors},
        {"MetricName": "ModelLatency", "Values": [10000.0, 20000.0], "Counts": [150.0, 50.0]},
    ]
    for datum in data:
        datum.update(Dimensions=DIMENSIONS, Timestamp=when)
    cloudwatch(fake).put_metric_data(Namespace="AWS/SageMaker", MetricData=data)


def canary(rules: LiveRules | None = None) -> Strategy:
    return Strategy("canary", 50, bake_seconds=120, live=rules or LiveRules())


def first_version(provider: Any, progress: Recorder, **options: Any) -> Any:
    p = provider(instance_count=2, **options)
    deployment = p.deploy(V1, image_ref(V1), Strategy(), progress)
    assert p.wait(deployment, 120, progress).healthy
    return p


def test_good_canary_is_promoted_with_the_alarms_watched(fake: FakeAws, provider, progress):
    p = first_version(provider, progress, alarms=["team-5xx"])
    put_baseline(fake)
    deployment = p.deploy(V2, image_ref(V2), canary(), progress)
    status = p.wait(deployment, 120, progress)
    assert status.healthy and status.version == V2.version

    (query,) = fake.calls("GetMetricData")
    stats = {q["Id"]: q["MetricStat"] for q in query["MetricDataQueries"]}
    assert {s["Metric"]["MetricName"]: s["Stat"] for s in stats.values()} == {
        "Invocations": "Sum",
        "Invocation5XXErrors": "Sum",
        "ModelLatency": "p99",
    }
    assert all(s["Metric"]["Dimensions"] == DIMENSIONS for s in stats.values())
    assert {s["Period"] for s in stats.values()} == {300}  # the 120 s bake, at least 5 minutes
    assert query["EndTime"] - query["StartTime"] == 300

    puts = {c["AlarmName"]: c for c in fake.calls("PutMetricAlarm")}
    assert set(puts) == {ERRORS, LATENCY}
    # 1% on the live variant + the 1-point margin; p99 20 ms + max(50%, 5 ms) = 30 ms
    assert puts[ERRORS]["Threshold"] == pytest.approx(0.02)
    assert "IF(invocations >= 20, errors / invocations, 0)" in [
        m.get("Expression") for m in puts[ERRORS]["Metrics"]
    ]
    assert puts[LATENCY]["ExtendedStatistic"] == "p99"
    assert puts[LATENCY]["Threshold"] == pytest.approx(30000.0)  # ModelLatency: microseconds
    for put in puts.values():
        assert {"Key": "deployer-project", "Value": "iris"} in put["Tags"]
        assert {"Key": "deployer-target", "Value": "prod"} in put["Tags"]

    update = fake.calls("UpdateEndpoint")[-1]["DeploymentConfig"]
    assert update["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "team-5xx"},
        {"AlarmName": ERRORS},
        {"AlarmName": LATENCY},
    ]
    assert f"live gate: alarm {LATENCY}: p99 ModelLatency above 30.0 ms" in progress.text
    assert "live gate: pass" in progress.text
    assert fake.rejected == []  # every request matched botocore's service models


@pytest.mark.parametrize(
    ("alarm", "reason"),
    [
        (
            ERRORS,
            "Threshold Crossed: 1 datapoint [0.25 (07/12/26 01:52:00)] was greater than "
            "the threshold (0.02).",
        ),
        (
            LATENCY,
            "Threshold Crossed: 1 datapoint [81234.0 (07/12/26 01:52:00)] was greater than "
            "the threshold (30000.0).",
        ),
    ],
)
def test_bad_canary_is_rolled_back_by_the_alarm_it_trips(
    fake: FakeAws, provider, progress, alarm: str, reason: str
):
    p = first_version(provider, progress)
    put_baseline(fake)
    fake.script_update(Script(["Updating", "Updating", "Updating"]))
    deployment = p.deploy(V2, image_ref(V2), canary(), progress)
    # the canary answers 500s (or slowly) while it bakes: CloudWatch sets the alarm
    cloudwatch(fake).set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason=reason)
    status = p.wait(deployment, 120, progress)

    assert not status.healthy and status.state == "failed"
    assert status.reason == (
        f"live gate: {alarm}: {reason}; rolled back: {V1.version} keeps serving"
    )
    assert status.details["rolled_back"] is True
    gate = status.details["live_gate"]
    assert gate["outcome"] == "fail" and gate["alarm"] == alarm
    assert gate["old"] == {"requests": 200, "errors": 2, "p99_ms": 20.0}
    assert alarm in status.details["failure_reason"]  # SageMaker's own FailureReason
    now = p.status()
    assert now.healthy and now.version == V1.version


def test_a_rollback_for_another_reason_keeps_sagemakers_reason(fake: FakeAws, provider, progress):
    """A failed ping check, not a live-gate alarm: SageMaker's reason, not a live gate."""
    p = first_version(provider, progress)
    put_baseline(fake)
    fake.script_update(Script(["Updating"], "rollback", "ping check failed"))
    status = p.wait(p.deploy(V2, image_ref(V2), canary(), progress), 120, progress)
    assert not status.healthy and "live gate" not in status.reason
    assert "ping check failed" in status.reason


def test_too_little_traffic_goes_on_without_a_latency_bound(fake: FakeAws, provider, progress):
    p = first_version(provider, progress)  # no metrics at all: the endpoint saw no traffic
    status = p.wait(p.deploy(V2, image_ref(V2), canary(), progress), 120, progress)
    assert status.healthy and status.version == V2.version
    (put,) = fake.calls("PutMetricAlarm")
    assert put["AlarmName"] == ERRORS and put["Threshold"] == pytest.approx(0.01)
    assert put["TreatMissingData"] == "notBreaching"
    assert "no p99 ModelLatency yet: no latency alarm" in progress.text


def test_require_traffic_makes_a_quiet_minute_breach(fake: FakeAws, provider, progress):
    p = first_version(provider, progress)
    rules = LiveRules(min_requests=50, require_traffic=True)
    p.deploy(V2, image_ref(V2), canary(rules), progress)
    (put,) = fake.calls("PutMetricAlarm")
    assert "IF(invocations >= 50, errors / invocations, 1)" in [
        m.get("Expression") for m in put["Metrics"]
    ]
    assert put["TreatMissingData"] == "breaching"


def test_all_at_once_and_rules_off_create_no_alarm(fake: FakeAws, provider, progress):
    p = first_version(provider, progress)
    p.wait(p.deploy(V2, image_ref(V2), Strategy("canary", 50, bake_seconds=60), progress), 120,
           progress)  # fmt: skip
    assert fake.calls("PutMetricAlarm") == [] and fake.calls("GetMetricData") == []


def test_no_room_for_the_live_alarms_is_refused_before_anything_changes(
    fake: FakeAws, provider, progress
):
    p = first_version(provider, progress, alarms=[f"a{i}" for i in range(9)])
    before = len(fake.calls("CreateModel"))
    with pytest.raises(UsageError, match="at most 10 per update"):
        p.deploy(V2, image_ref(V2), canary(), progress)
    assert len(fake.calls("CreateModel")) == before
    assert fake.calls("PutMetricAlarm") == []
    plan = p.plan(V2, canary())
    assert any("at most 10 per update" in problem for problem in plan.problems)


def test_destroy_deletes_this_targets_alarms_only(fake: FakeAws, provider, progress):
    p = first_version(provider, progress)
    put_baseline(fake)
    p.wait(p.deploy(V2, image_ref(V2), canary(), progress), 120, progress)
    # same name prefix, another project's tags: not ours
    cloudwatch(fake).put_metric_alarm(
        AlarmName=f"{ERRORS}-copy",
        MetricName="Invocations",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "deployer-project", "Value": "other"}],
    )
    removed = p.destroy(progress)
    assert f"CloudWatch alarm {ERRORS}" in removed and f"CloudWatch alarm {LATENCY}" in removed
    left = cloudwatch(fake).describe_alarms()["MetricAlarms"]
    assert [a["AlarmName"] for a in left] == [f"{ERRORS}-copy"]


def test_plan_names_the_alarms_a_live_canary_updates(fake: FakeAws, provider, progress):
    p = first_version(provider, progress)
    changes = {c.resource: c for c in p.plan(V2, canary()).changes}
    assert "CloudWatch alarms deployer-iris-prod-live-*" in changes
    assert "CloudWatch alarms deployer-iris-prod-live-*" not in {
        c.resource for c in p.plan(V2, Strategy("canary", 50)).changes
    }
    assert fake.calls("PutMetricAlarm") == []  # plan writes nothing


def test_destroy_without_cloudwatch_permission_says_so_and_goes_on(
    fake: FakeAws, provider, progress
):
    p = first_version(provider, progress)
    fake.fail("DescribeAlarms", "AccessDeniedException", message="not authorized")
    removed = p.destroy(progress)
    assert "endpoint iris-prod" in removed
    assert "CloudWatch alarms deployer-iris-prod-live-* were not checked" in progress.text
    assert "cloudwatch:DescribeAlarms" in progress.text


def put_canary(fake: FakeAws, invocations: int, errors: int, latency_us: float) -> None:
    """What the endpoint served while the canary baked (both fleets share the variant)."""
    data: list[dict[str, Any]] = [
        {"MetricName": "Invocations", "Value": invocations},
        {"MetricName": "Invocation5XXErrors", "Value": errors},
        {"MetricName": "ModelLatency", "Values": [10000.0, latency_us], "Counts": [90.0, 10.0]},
    ]
    for datum in data:
        datum.update(Dimensions=DIMENSIONS, Timestamp=datetime.now(timezone.utc))
    cloudwatch(fake).put_metric_data(Namespace="AWS/SageMaker", MetricData=data)


@pytest.mark.parametrize(
    ("invocations", "errors", "latency_us", "alarm", "datapoint"),
    [
        (100, 15, 20000.0, ERRORS, "[0.15 ("),  # the canary answers 500s
        (100, 1, 95000.0, LATENCY, "[95000 ("),  # the canary is slow
        (100, 1, 25000.0, None, None),  # within both bounds: promoted
        (10, 9, 20000.0, None, None),  # under min_requests a minute: no verdict, goes on
    ],
)
def test_cloudwatch_evaluates_what_the_canary_served(
    fake: FakeAws, provider, progress, invocations, errors, latency_us, alarm, datapoint
):
    p = first_version(provider, progress)
    put_baseline(fake)
    fake.script_update(Script(["Updating", "Updating", "Updating"]))
    deployment = p.deploy(V2, image_ref(V2), canary(), progress)
    put_canary(fake, invocations, errors, latency_us)
    status = p.wait(deployment, 120, progress)
    if alarm is None:
        assert status.healthy and status.version == V2.version
        assert "live gate: pass" in progress.text
        return
    assert not status.healthy and status.details["rolled_back"] is True
    assert status.reason.startswith(f"live gate: {alarm}: Threshold Crossed: ")
    assert datapoint in status.reason
    assert status.reason.endswith(f"; rolled back: {V1.version} keeps serving")
    assert p.status().version == V1.version


OK = (200, b'{"predictions": [0]}', "application/json")
BOOM = (500, b'{"error": "model crashed"}', "application/json")


@pytest.mark.parametrize(
    ("answers", "extra_latency_us", "alarm", "datapoint"),
    [
        ([BOOM] * 10 + [OK] * 30, 0.0, ERRORS, "[0.25 ("),  # the model answers 500
        ([OK] * 40, 90000.0, LATENCY, "was greater than the threshold (30000)"),  # slow
        ([OK] * 40, 0.0, None, None),
    ],
)
def test_invocations_during_the_bake_decide(
    fake: FakeAws, provider, progress, answers, extra_latency_us, alarm, datapoint
):
    """InvokeEndpoint through boto3's runtime while the update bakes; the fake counts each
    invocation in CloudWatch as SageMaker does, and CloudWatch judges the alarms."""
    p = first_version(provider, progress)
    put_baseline(fake)
    fake.script_update(Script(["Updating", "Updating", "Updating"]))
    deployment = p.deploy(V2, image_ref(V2), canary(), progress)
    fake.model_answers.extend(answers)
    fake.extra_latency_us = extra_latency_us
    statuses = [p.invoke(b"[[0,0,0,0]]", "application/json").status for _ in answers]
    assert statuses == [answer[0] for answer in answers]
    status = p.wait(deployment, 120, progress)
    if alarm is None:
        assert status.healthy and status.version == V2.version
        return
    assert not status.healthy and status.details["rolled_back"] is True
    assert status.reason.startswith(f"live gate: {alarm}: Threshold Crossed: ")
    assert datapoint in status.reason
    assert p.status().version == V1.version
