"""Azure Monitor: an ARM template of ``Microsoft.Insights/metricAlerts`` resources over the
Azure ML online endpoint's metrics (namespace
``Microsoft.MachineLearningServices/workspaces/onlineEndpoints``):

- p99 latency: ``RequestLatency_P99`` (milliseconds, ``Average`` over the window).

A metric alert compares one metric with a threshold: the error rate (5xx answers over all
requests) is a ratio it cannot express; the endpoint has no readiness metric; drift needs
Azure ML model monitoring. Those rules are skipped, with why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.alerting.document import Rendered, as_json, placeholders
from deployer.alerting.rules import AlertRule

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
API_VERSION = "2018-03-01"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
# what metricAlerts accept (minutes)
WINDOWS = (1, 5, 15, 30, 60, 360, 720, 1440)
FREQUENCIES = (1, 5, 15, 30, 60)
SEVERITY = {"critical": 0, "warning": 2}
SKIPPED = {
    "error_rate": "an Azure Monitor metric alert compares one metric with a threshold; "
    "5xx answers / requests (RequestsPerMinute by statusCodeClass) is a ratio it cannot "
    "express (a log search alert over AmlOnlineEndpointTrafficLog can)",
    "not_ready": "an Azure ML online endpoint publishes no readiness metric (the "
    "deployment's provisioning state is what `deployer status` reads)",
    "feature_drift": "drift on Azure ML needs a model monitor, which deployer does not "
    "create; use `deployer drift --to TARGET`",
    "prediction_drift": "drift on Azure ML needs a model monitor, which deployer does not "
    "create; use `deployer drift --to TARGET`",
}


def iso_minutes(minutes: int) -> str:
    return f"PT{minutes // 60}H" if minutes >= 60 else f"PT{minutes}M"


def window(seconds: int) -> int:
    """The shortest window Azure accepts that covers ``seconds`` (minutes)."""
    minutes = -(-seconds // 60)
    return next((w for w in WINDOWS if w >= minutes), WINDOWS[-1])


def alert(rule: AlertRule, scope: Mapping[str, str]) -> dict[str, Any]:
    """The metricAlerts resource of ``rule`` (p99 latency)."""
    size = window(rule.window_seconds)
    every = max(f for f in FREQUENCIES if f <= size)
    endpoint = scope["endpoint_id"].rstrip("/").rsplit("/", 1)[-1]
    return {
        "type": "Microsoft.Insights/metricAlerts",
        "apiVersion": API_VERSION,
        "name": f"{endpoint}-{rule.name}"[:260],
        "location": "global",
        "tags": {"managed-by": "deployer"},
        "properties": {
            "description": f"deployer: {rule.summary}",
            "severity": SEVERITY[rule.severity],
            "enabled": True,
            "scopes": [scope["endpoint_id"]],
            "evaluationFrequency": iso_minutes(every),
            "windowSize": iso_minutes(size),
            "targetResourceType": NAMESPACE,
            "criteria": {
                "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                "allOf": [
                    {
                        "criterionType": "StaticThresholdCriterion",
                        "name": rule.name,
                        "metricName": "RequestLatency_P99",
                        "metricNamespace": NAMESPACE,
                        "operator": "GreaterThan",
                        "threshold": rule.threshold,
                        "timeAggregation": "Average",
                    }
                ],
            },
            "autoMitigate": True,
            "actions": [
                {"actionGroupId": a} for a in scope.get("action_groups", "").split(",") if a
            ],
        },
    }


def render(rules: list[AlertRule], scope: Mapping[str, str]) -> Rendered:
    full, notes = placeholders(scope, ("endpoint_id",))
    kept = [r for r in rules if r.kind not in SKIPPED]
    skipped = [(r.name, SKIPPED[r.kind]) for r in rules if r.kind in SKIPPED]
    for r in kept:
        size = window(r.window_seconds) * 60
        if size != r.window_seconds:
            notes.append(
                f"{r.name}: Azure takes a {size // 60}-minute window, not {r.window_seconds} s"
            )
    document = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "resources": [alert(r, full) for r in kept],
    }
    return Rendered("azure", document, as_json(document), skipped, notes)
