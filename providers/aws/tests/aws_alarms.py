"""The fake's CloudWatch alarm evaluation: what CloudWatch does with the data a test put.

moto stores alarms and metric data but never evaluates an alarm. While an update bakes,
the SageMaker fake calls ``evaluate`` for the alarms of its AutoRollbackConfiguration:
each alarm, as its PutMetricAlarm request defined it (a metric and a statistic or
``pNN``, or metric math over MetricStats with ``IF``, comparisons and arithmetic), is
computed over the data put since the update began, compared with its threshold, and set
to ALARM with CloudWatch's kind of StateReason when it breaches.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
COMPARE = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(value), timezone.utc)


def values(backend: Any, metric: dict[str, Any], since: datetime) -> list[float]:
    """The values put for ``metric`` (namespace, name, exact dimensions) since ``since``."""
    want = {(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])}
    found = []
    for datum in backend.get_all_metrics():
        if (datum.namespace, datum.name) != (metric["Namespace"], metric["MetricName"]):
            continue
        if {(d.name, d.value) for d in datum.dimensions} != want:
            continue
        if _utc(datum.timestamp) >= since and hasattr(datum, "value"):
            found.append(float(datum.value))
    return found


def statistic(data: list[float], stat: str) -> float | None:
    """CloudWatch's statistic of ``data`` (None: no datapoint)."""
    if not data:
        return None
    if stat.startswith("p"):
        ordered = sorted(data)
        return ordered[max(math.ceil(float(stat[1:]) / 100 * len(ordered)), 1) - 1]
    return {
        "Sum": sum,
        "Average": lambda d: sum(d) / len(d),
        "SampleCount": len,
        "Maximum": max,
        "Minimum": min,
    }[stat](data)


def expression(text: str, names: dict[str, float | None]) -> float | None:
    """A metric math expression over ``names``: arithmetic, comparisons and IF."""

    def run(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return run(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "IF":
            condition, then, otherwise = node.args
            return run(then) if run(condition) else run(otherwise)
        if isinstance(node, ast.Compare):
            left, (op,), (right,) = run(node.left), node.ops, node.comparators
            return COMPARE[type(op)](left, run(right))
        if isinstance(node, ast.BinOp):
            left, right = run(node.left), run(node.right)
            if isinstance(node.op, ast.Div):
                return left / right if right else None
            return BINARY[type(node.op)](left, right)
        raise ValueError(f"the fake's metric math does not know {ast.dump(node)}")

    try:
        return run(ast.parse(text, mode="eval"))
    except TypeError:  # an input without datapoints
        return None


def value(backend: Any, alarm: dict[str, Any], since: datetime) -> float | None:
    """The alarm's datapoint over the data since ``since`` (None: missing)."""
    if "Metrics" not in alarm:
        stat = alarm.get("ExtendedStatistic") or alarm["Statistic"]
        return statistic(values(backend, alarm, since), stat)
    computed: dict[str, float | None] = {}
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            stat = query["MetricStat"]
            data = values(backend, stat["Metric"], since)
            computed[query["Id"]] = statistic(data, stat["Stat"])
    returned = next(q for q in alarm["Metrics"] if q.get("ReturnData", True))
    if "Expression" in returned:
        return expression(returned["Expression"], computed)
    return computed[returned["Id"]]


def evaluate(backend: Any, definitions: dict[str, dict[str, Any]], since: datetime) -> None:
    """Set each alarm of ``definitions`` (PutMetricAlarm bodies by name) that breaches on
    the data since ``since`` to ALARM, as CloudWatch would."""
    for name, alarm in definitions.items():
        stored = backend.alarms.get(name)
        if stored is None or stored.state_value == "ALARM":
            continue
        point = value(backend, alarm, since)
        compare, words = COMPARISONS[alarm["ComparisonOperator"]]
        threshold = float(alarm["Threshold"])
        if point is None:
            if alarm.get("TreatMissingData") != "breaching":
                continue
            reason = "no datapoints were received for 1 period and 1 missing datapoint was "
            reason += "treated as [Breaching]"
        elif compare(point, threshold):
            when = datetime.now(timezone.utc).strftime("%d/%m/%y %H:%M:%S")
            reason = (
                f"Threshold Crossed: 1 out of the last 1 datapoints [{point:g} ({when})] was "
                f"{words} the threshold ({threshold:g}) (minimum 1 datapoint for OK -> "
                "ALARM transition)."
            )
        else:
            continue
        data = {"version": "1.0", "queryDate": datetime.now(timezone.utc).isoformat()}
        backend.set_alarm_state(name, reason, json.dumps(data), "ALARM")
