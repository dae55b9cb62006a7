"""Prometheus: the rules as PromQL, written as a plain rules file (``promtool check rules``)
or a PrometheusRule manifest (monitoring.coreos.com/v1, the Prometheus Operator's).

Series are grouped by ``job`` (and ``instance`` for readiness, ``feature`` for drift), so one
rules file serves every scraped deployment; ``scope["job"]`` narrows them to one job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from deployer.alerting.document import Rendered
from deployer.alerting.rules import (
    FEATURE_PSI,
    MODEL_READY,
    PREDICT_ROUTES,
    PREDICTION_PSI,
    REQUESTS,
    AlertRule,
)

GROUP = "deployer"


def selector(scope: Mapping[str, str], **matchers: str) -> str:
    """A PromQL label selector: ``matchers`` (``=~`` when the value starts with ``~``) and
    the scope's ``job``."""
    parts = []
    if scope.get("job"):
        parts.append(f'job="{scope["job"]}"')
    for label, value in matchers.items():
        parts.append(f'{label}=~"{value[1:]}"' if value.startswith("~") else f'{label}="{value}"')
    return "{" + ",".join(parts) + "}" if parts else ""


def predictions(scope: Mapping[str, str], **matchers: str) -> str:
    """The selector of prediction requests (optionally more matchers)."""
    return selector(scope, route="~" + "|".join(PREDICT_ROUTES), **matchers)


def duration(seconds: int) -> str:
    """A Prometheus duration: ``5m``, ``90s``."""
    return f"{seconds // 60}m" if seconds % 60 == 0 and seconds else f"{seconds}s"


def expression(rule: AlertRule, scope: Mapping[str, str]) -> str:
    """The PromQL that is non-empty while ``rule`` fires."""
    w = duration(rule.window_seconds)
    count = REQUESTS + "_count"
    if rule.kind == "error_rate":
        errors = f"sum by (job) (rate({count}{predictions(scope, status='~5..')}[{w}]))"
        total = f"sum by (job) (rate({count}{predictions(scope)}[{w}]))"
        return f"({errors} / {total}) > {rule.threshold:g}"
    if rule.kind == "latency_p99":
        buckets = f"sum by (job, le) (rate({REQUESTS}_bucket{predictions(scope)}[{w}]))"
        return f"histogram_quantile(0.99, {buckets}) > {rule.threshold / 1000:g}"
    if rule.kind == "not_ready":
        return f"min by (job, instance) ({MODEL_READY}{selector(scope)}) < 1"
    if rule.kind == "feature_drift":
        return f"max by (job, feature) ({FEATURE_PSI}{selector(scope)}) > {rule.threshold:g}"
    return f"max by (job) ({PREDICTION_PSI}{selector(scope)}) > {rule.threshold:g}"


def rule_entry(rule: AlertRule, scope: Mapping[str, str]) -> dict[str, Any]:
    """One alerting rule of a rule group."""
    summary = rule.summary
    if rule.kind == "feature_drift":
        summary = "feature {{ $labels.feature }}: " + summary
    return {
        "alert": rule.name,
        "expr": expression(rule, scope),
        "for": duration(rule.for_seconds) if rule.for_seconds else "0s",
        "labels": {"severity": rule.severity},
        "annotations": {
            "summary": summary,
            "description": f"{rule.kind} on {{{{ $labels.job }}}}: value {{{{ $value }}}}",
        },
    }


def groups(rules: list[AlertRule], scope: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"name": GROUP, "rules": [rule_entry(r, scope) for r in rules]}]


def render_rules_file(rules: list[AlertRule], scope: Mapping[str, str]) -> Rendered:
    document = {"groups": groups(rules, scope)}
    return Rendered("prometheus", document, _yaml(document))


def render_prometheus_rule(rules: list[AlertRule], scope: Mapping[str, str]) -> Rendered:
    name = scope.get("name") or "deployer-alerts"
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "deployer"},
    }
    if scope.get("namespace"):
        metadata["namespace"] = scope["namespace"]
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": groups(rules, scope)},
    }
    notes = ["the Prometheus Operator selects rules by label: add its ruleSelector's labels"]
    return Rendered("prometheusrule", document, _yaml(document), notes=notes)


def _yaml(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=1000)
