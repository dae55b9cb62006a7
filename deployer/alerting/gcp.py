"""Cloud Monitoring: one AlertPolicy (monitoring v3, its JSON form) over the Vertex AI
endpoint's metrics (monitored resource ``aiplatform.googleapis.com/Endpoint``):

- error rate: ``prediction/online/response_count`` with a 5xx ``response_code`` over the
  same metric for every code (a ratio condition: ``denominatorFilter``);
- p99 latency: ``prediction/online/prediction_latencies`` (a distribution in
  milliseconds) aligned with ``ALIGN_PERCENTILE_99``.

Vertex AI publishes no readiness metric and its drift comes from Vertex AI Model
Monitoring jobs, which deployer does not create: those rules are skipped, with why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.alerting.document import Rendered, as_json, placeholders
from deployer.alerting.rules import AlertRule

RESOURCE = "aiplatform.googleapis.com/Endpoint"
PREFIX = "aiplatform.googleapis.com/prediction/online/"
MIN_ALIGNMENT = 60  # Cloud Monitoring refuses a shorter alignment period
SKIPPED = {
    "not_ready": "Vertex AI publishes no readiness metric (the endpoint's deployed model "
    "state is what `deployer status` reads)",
    "feature_drift": "drift on Vertex AI needs a Model Monitoring job, which deployer does "
    "not create; use `deployer drift --to TARGET`",
    "prediction_drift": "drift on Vertex AI needs a Model Monitoring job, which deployer does "
    "not create; use `deployer drift --to TARGET`",
}
SEVERITY = {"critical": "CRITICAL", "warning": "WARNING"}


def _filter(metric: str, scope: Mapping[str, str], extra: str = "") -> str:
    text = (
        f'resource.type = "{RESOURCE}" AND metric.type = "{PREFIX}{metric}" '
        f'AND resource.labels.endpoint_id = "{scope["endpoint_id"]}"'
    )
    if scope.get("location"):
        text += f' AND resource.labels.location = "{scope["location"]}"'
    return text + extra


def condition(rule: AlertRule, scope: Mapping[str, str]) -> dict[str, Any]:
    """One condition of the policy."""
    window = f"{max(MIN_ALIGNMENT, rule.window_seconds)}s"
    threshold: dict[str, Any] = {
        "comparison": "COMPARISON_GT",
        "duration": "0s",
        "trigger": {"count": 1},
    }
    if rule.kind == "error_rate":
        summed = {
            "alignmentPeriod": window,
            "perSeriesAligner": "ALIGN_SUM",
            "crossSeriesReducer": "REDUCE_SUM",
            "groupByFields": ["resource.labels.endpoint_id"],
        }
        five = ' AND metric.labels.response_code = monitoring.regex.full_match("5.*")'
        threshold.update(
            filter=_filter("response_count", scope, five),
            aggregations=[summed],
            denominatorFilter=_filter("response_count", scope),
            denominatorAggregations=[summed],
            thresholdValue=rule.threshold,
        )
    else:
        threshold.update(
            filter=_filter("prediction_latencies", scope),
            aggregations=[
                {
                    "alignmentPeriod": window,
                    "perSeriesAligner": "ALIGN_PERCENTILE_99",
                    "crossSeriesReducer": "REDUCE_MAX",
                    "groupByFields": ["resource.labels.endpoint_id"],
                }
            ],
            thresholdValue=rule.threshold,
        )
    return {"displayName": f"{rule.name}: {rule.summary}", "conditionThreshold": threshold}


def policy(rules: list[AlertRule], scope: Mapping[str, str], severity: str) -> dict[str, Any]:
    name = scope.get("display_name") or f"deployer {scope['endpoint_id']}"
    return {
        "displayName": f"{name} ({severity})",
        "documentation": {
            "content": "\n".join(f"- {r.name}: {r.summary}" for r in rules),
            "mimeType": "text/markdown",
        },
        "userLabels": {"managed-by": "deployer", "severity": severity},
        "combiner": "OR",
        "enabled": True,
        "severity": SEVERITY[severity],
        "conditions": [condition(r, scope) for r in rules],
    }


def render(rules: list[AlertRule], scope: Mapping[str, str]) -> Rendered:
    """One policy per severity (a policy has one severity)."""
    full, notes = placeholders(scope, ("endpoint_id",))
    kept = [r for r in rules if r.kind not in SKIPPED]
    skipped = [(r.name, SKIPPED[r.kind]) for r in rules if r.kind in SKIPPED]
    policies = [
        policy([r for r in kept if r.severity == s], full, s)
        for s in ("critical", "warning")
        if any(r.severity == s for r in kept)
    ]
    document = {"policies": policies}
    return Rendered("gcp", document, as_json(document), skipped, notes)
