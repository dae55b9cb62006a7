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
