"""CloudWatch: one PutMetricAlarm request body per rule, on the SageMaker endpoint's own
metrics (namespace ``AWS/SageMaker``, dimensions ``EndpointName`` and ``VariantName``).

- error rate: metric math ``Invocation5XXErrors / Invocations`` (both ``Sum`` over the
  window), missing data not breaching (no traffic is no error);
- p99 latency: ``ModelLatency`` with ``ExtendedStatistic: p99``; SageMaker reports it in
  MICROseconds, so the threshold is ``p99_ms * 1000``.

SageMaker publishes no readiness metric (the endpoint's status is ``deployer status``'s)
and no drift metric without SageMaker Model Monitor: those rules are skipped, with why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.alerting.document import Rendered, as_json, placeholders
from deployer.alerting.rules import AlertRule

NAMESPACE = "AWS/SageMaker"
MICROSECONDS_PER_MS = 1000
SKIPPED = {
    "not_ready": "SageMaker publishes no readiness metric (the endpoint's status is what "
    "`deployer status` reads)",
    "feature_drift": "drift on SageMaker needs SageMaker Model Monitor's scheduled jobs, "
    "which deployer does not create; use `deployer drift --to TARGET`",
    "prediction_drift": "drift on SageMaker needs SageMaker Model Monitor's scheduled jobs, "
    "which deployer does not create; use `deployer drift --to TARGET`",
}


def period(seconds: int) -> int:
    """CloudWatch takes 10, 30 or a multiple of 60 seconds: the window, rounded up."""
    if seconds <= 10:
        return 10
    if seconds <= 30:
        return 30
    return -(-seconds // 60) * 60


def _metric(name: str, scope: Mapping[str, str]) -> dict[str, Any]:
    return {
        "Namespace": NAMESPACE,
        "MetricName": name,
        "Dimensions": [
            {"Name": "EndpointName", "Value": scope["EndpointName"]},
            {"Name": "VariantName", "Value": scope["VariantName"]},
        ],
    }


def alarm(rule: AlertRule, scope: Mapping[str, str]) -> dict[str, Any]:
    """The PutMetricAlarm body of ``rule`` (error rate or p99 latency)."""
    seconds = period(rule.window_seconds)
    body: dict[str, Any] = {
        "AlarmName": f"{scope['EndpointName']}-{rule.name}",
        "AlarmDescription": f"deployer: {rule.summary}",
        "ActionsEnabled": True,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "Tags": [
            {"Key": "deployer-rule", "Value": rule.name},
            {"Key": "deployer-severity", "Value": rule.severity},
        ],
    }
    if scope.get("AlarmActions"):
        body["AlarmActions"] = scope["AlarmActions"].split(",")
    if rule.kind == "error_rate":
        body["Threshold"] = rule.threshold
        body["Metrics"] = [
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": _metric("Invocation5XXErrors", scope),
                    "Period": seconds,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
            {
                "Id": "invocations",
                "MetricStat": {
                    "Metric": _metric("Invocations", scope),
                    "Period": seconds,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
            {
                "Id": "error_rate",
                "Expression": "IF(invocations > 0, errors / invocations, 0)",
                "Label": "5XX errors / invocations",
                "ReturnData": True,
            },
        ]
        return body
    body.update(_metric("ModelLatency", scope))
    body.update(
        {
            "Period": seconds,
            "ExtendedStatistic": "p99",
            "Threshold": rule.threshold * MICROSECONDS_PER_MS,
        }
    )
    return body


def render(rules: list[AlertRule], scope: Mapping[str, str]) -> Rendered:
    full, notes = placeholders(scope, ("EndpointName", "VariantName"))
    alarms = [alarm(r, full) for r in rules if r.kind not in SKIPPED]
    skipped = [(r.name, SKIPPED[r.kind]) for r in rules if r.kind in SKIPPED]
    document = {"alarms": alarms}
    return Rendered("cloudwatch", document, as_json(document), skipped, notes)
