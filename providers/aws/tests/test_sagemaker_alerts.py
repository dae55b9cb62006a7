"""The sagemaker provider's alerts: the endpoint's names in the rendered CloudWatch alarms,
``apply`` as PutMetricAlarm at the fake's wire, and the error-rate alarm's metric math
evaluated on the endpoint's metrics as CloudWatch would."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from deployer.alerting.render import render
from deployer.alerting.rules import alert_rules
from deployer.alerting.targets import format_and_scope
from deployer.config import MonitoringConfig
from deployer.providers import DeployerError


def rendered(provider: Any) -> dict[str, Any]:
    fmt, scope = format_and_scope(provider, "sagemaker")
    assert fmt == "cloudwatch"
    return render(alert_rules(MonitoringConfig()), fmt, scope).document


def test_the_alarms_watch_this_endpoint_and_its_variant(provider: Any) -> None:
    document = rendered(provider(target="prod", project="iris"))
    errors, latency = document["alarms"]
    assert errors["AlarmName"] == "iris-prod-DeployerHighErrorRate"
    dimensions = errors["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"]
    assert dimensions == [
        {"Name": "EndpointName", "Value": "iris-prod"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    assert latency["Dimensions"] == dimensions


def test_apply_puts_each_alarm_and_again_changes_nothing(fake: Any, provider: Any) -> None:
    target = provider()
    document = rendered(target)
    names = target.alerts().apply(document)
    assert names == ["iris-prod-DeployerHighErrorRate", "iris-prod-DeployerHighLatencyP99"]
    assert target.alerts().apply(document) == names
    assert len(fake.calls("PutMetricAlarm")) == 4
    found = target.aws.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in found) == sorted(names)


def test_a_refused_alarm_is_an_error_naming_it(fake: Any, provider: Any) -> None:
    target = provider()
    fake.fail("PutMetricAlarm", "AccessDenied", 403)
    with pytest.raises(DeployerError, match="DeployerHighErrorRate"):
        target.alerts().apply(rendered(target))


@pytest.mark.parametrize(("errors", "fires"), [(5, True), (0, False)])
def test_the_error_rate_alarm_fires_on_the_endpoints_metrics(
    fake: Any, provider: Any, errors: int, fires: bool
) -> None:
    target = provider()
    since = datetime.now(timezone.utc)
    names = target.alerts().apply(rendered(target))
    dimensions = [
        {"Name": "EndpointName", "Value": "iris-prod"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    target.aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 20},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dimensions, "Value": errors},
        ],
    )
    fired = fake.alarm_fired([names[0]], since)
    assert (fired is not None) is fires


APPLY = MonitoringConfig.model_validate({"alerts": {"apply": True}})


def pushed(fake: Any, provider: Any, tmp_path: Any, monitoring: MonitoringConfig) -> Any:
    """A push to the fake as the orchestrator runs it, with the alerts hook."""
    import orjson
    from aws_support import image_ref, release

    from deployer.alerting.apply import after_push
    from deployer.orchestrate import push_release
    from deployer.providers import Strategy

    rel = release("alerted-one")
    target = provider(target="aws")
    target.publish = lambda image, progress: image_ref(rel)
    fake.model_answers.append(
        (200, orjson.dumps({"predictions": [0] * len(rel.sample)}), "application/json")
    )
    return push_release(
        "iris",
        {"aws": target},
        lambda: rel,
        strategy=Strategy(),
        policy="rollback",
        journal_dir=tmp_path,
        after_push=after_push(monitoring),
    )


def alert_steps(result: Any) -> list[tuple[str, str]]:
    return [(e.step, e.detail) for e in result.journal if e.step.startswith("alerts")]


def test_push_with_apply_puts_the_alarms_and_journals_them(
    fake: Any, provider: Any, tmp_path: Any
) -> None:
    result = pushed(fake, provider, tmp_path, APPLY)
    assert result.ok, [t.error for t in result.targets]
    ((step, detail),) = alert_steps(result)
    assert step == "alerts applied"
    assert detail.startswith("iris-aws-DeployerHighErrorRate, iris-aws-DeployerHighLatencyP99")
    assert "skipped DeployerModelNotReady" in detail
    assert len(fake.calls("PutMetricAlarm")) == 2
    journal = next(tmp_path.glob("*.json")).read_text()
    assert "alerts applied" in journal


def test_a_refused_alarm_is_journalled_and_the_push_still_succeeds(
    fake: Any, provider: Any, tmp_path: Any
) -> None:
    fake.fail("PutMetricAlarm", "AccessDenied", 403)
    result = pushed(fake, provider, tmp_path, APPLY)
    assert result.ok and result.status == "succeeded"
    ((step, detail),) = alert_steps(result)
    assert step == "alerts not applied"
    assert "DeployerHighErrorRate" in detail


def test_without_apply_push_puts_no_alarm(fake: Any, provider: Any, tmp_path: Any) -> None:
    result = pushed(fake, provider, tmp_path, MonitoringConfig())
    assert result.ok
    assert alert_steps(result) == []
    assert fake.calls("PutMetricAlarm") == []
