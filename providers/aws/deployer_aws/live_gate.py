"""Live gates on SageMaker: CloudWatch alarms that SageMaker's own auto-rollback watches.

SageMaker bakes each traffic step of a blue/green update itself and rolls the update back
when an alarm of its ``AutoRollbackConfiguration`` goes into ALARM. With ``release.live``
deployer therefore does not poll while baking; before the update it

1. reads the live variant's baseline from CloudWatch ``GetMetricData`` (``AWS/SageMaker``
   ``Invocations`` and ``Invocation5XXErrors`` sums, ``ModelLatency`` p99, by
   ``EndpointName`` and ``VariantName``) over the last window;
2. creates (``PutMetricAlarm``, tagged with the project and target) two alarms: the 5xx
   error rate (metric math) above the baseline plus the allowed margin, and the p99
   ``ModelLatency`` above the allowed bound (only when the baseline has a p99);
3. hands their names to the update's ``AutoRollbackConfiguration``;
4. after an update SageMaker rolled back, names the alarm that fired and CloudWatch's
   reason for it (``DescribeAlarms``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from deployer.providers import Progress, live
from deployer_aws import names
from deployer_aws.aws import Aws

NAMESPACE = "AWS/SageMaker"
PERIOD = 60  # SageMaker publishes its endpoint metrics every minute
MIN_WINDOW = 300  # the baseline covers at least five minutes of the live variant
MAX_WINDOW = 3600
MICROSECONDS_PER_MS = 1000.0  # ModelLatency is in microseconds
KINDS = ("errors", "latency")


@dataclass(frozen=True)
class Alarm:
    """One alarm deployer creates for an update: its name, what it watches, its bound."""

    name: str
    kind: str  # "errors" (rate, 0..1) or "latency" (p99, milliseconds)
    threshold: float

    def describe(self) -> str:
        if self.kind == "errors":
            return f"{self.name}: 5xx error rate above {self.threshold:.2%}"
        return f"{self.name}: p99 ModelLatency above {self.threshold:.1f} ms"


def alarm_prefix(project: str, target: str) -> str:
    """The name prefix of this target's live-gate alarms (what destroy looks for)."""
    return f"deployer-{names.clean(project)}-{names.clean(target)}-live-"


def alarm_name(project: str, target: str, kind: str) -> str:
    return alarm_prefix(project, target) + ("5xx-rate" if kind == "errors" else "p99-latency")


def _dimensions(endpoint: str) -> list[dict[str, str]]:
    return [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": names.VARIANT},
    ]


def _stat(query_id: str, metric: str, stat: str, endpoint: str, period: int) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": metric,
                "Dimensions": _dimensions(endpoint),
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def window_seconds(bake_seconds: float) -> int:
    """The baseline window: the bake's length, 5 minutes to an hour, whole minutes."""
    seconds = min(max(int(bake_seconds), MIN_WINDOW), MAX_WINDOW)
    return int(math.ceil(seconds / PERIOD) * PERIOD)


def baseline(aws: Aws, endpoint: str, seconds: int, now: datetime | None = None) -> live.Signals:
    """What the live variant served over the last ``seconds`` (one period the window long,
    so the p99 is CloudWatch's over the whole window)."""
    end = (now or datetime.now(timezone.utc)).replace(second=0, microsecond=0)
    start = end - timedelta(seconds=seconds)
    queries = [
        _stat("invocations", "Invocations", "Sum", endpoint, seconds),
        _stat("errors", "Invocation5XXErrors", "Sum", endpoint, seconds),
        _stat("p99", "ModelLatency", "p99", endpoint, seconds),
    ]
    values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
    token: str | None = None
    while True:
        params: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
        }
        if token:
            params["NextToken"] = token
        resource = f"metrics of endpoint {endpoint}"
        page = aws.call("cloudwatch", "get_metric_data", resource, **params)
        for result in page.get("MetricDataResults", []):
            values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
        token = page.get("NextToken")
        if not token:
            break
    p99 = values["p99"]
    return live.Signals(
        int(sum(values["invocations"])),
        int(sum(values["errors"])),
        max(p99) / MICROSECONDS_PER_MS if p99 else None,
    )


def bounds(old: live.Signals, rules: live.LiveRules) -> dict[str, float]:
    """The alarms' thresholds from the baseline, as ``compare`` bounds the new version:
    error rate (0..1) and, with a baseline p99, p99 latency in milliseconds."""
    found = {"errors": old.error_rate + rules.max_error_rate_increase}
    if old.p99_ms is not None:
        found["latency"] = old.p99_ms + max(
            old.p99_ms * rules.max_p99_increase, rules.min_p99_increase_ms
        )
    return found


def _error_alarm(alarm: Alarm, endpoint: str, rules: live.LiveRules) -> dict[str, Any]:
    inputs = [
        {**_stat("errors", "Invocation5XXErrors", "Sum", endpoint, PERIOD), "ReturnData": False},
        {**_stat("invocations", "Invocations", "Sum", endpoint, PERIOD), "ReturnData": False},
    ]
    # a minute with too little traffic counts as no error (compare's "wait"), or as a
    # breach when the rules require traffic
    quiet = 1 if rules.require_traffic else 0
    expression = f"IF(invocations >= {rules.min_requests}, errors / invocations, {quiet})"
    rate = {"Id": "rate", "Expression": expression, "Label": "5xx error rate", "ReturnData": True}
    missing = "breaching" if rules.require_traffic else "notBreaching"
    return {"Metrics": [rate, *inputs], "TreatMissingData": missing}


def _latency_alarm(endpoint: str) -> dict[str, Any]:
    return {
        "Namespace": NAMESPACE,
        "MetricName": "ModelLatency",
        "Dimensions": _dimensions(endpoint),
        "ExtendedStatistic": "p99",
        "Period": PERIOD,
        "TreatMissingData": "notBreaching",
    }


def ensure_alarms(
    aws: Aws,
    project: str,
    target: str,
    endpoint: str,
    old: live.Signals,
    rules: live.LiveRules,
    progress: Progress,
) -> list[Alarm]:
    """Create (or overwrite) this target's live-gate alarms for ``old``'s baseline."""
    alarms: list[Alarm] = []
    for kind, threshold in bounds(old, rules).items():
        alarm = Alarm(alarm_name(project, target, kind), kind, threshold)
        if kind == "errors":
            metric = _error_alarm(alarm, endpoint, rules)
            value = threshold
        else:
            metric = _latency_alarm(endpoint)
            value = threshold * MICROSECONDS_PER_MS
        aws.call(
            "cloudwatch",
            "put_metric_alarm",
            f"alarm {alarm.name}",
            AlarmName=alarm.name,
            AlarmDescription=(
                f"deployer live gate of {project}/{target} (endpoint {endpoint}): "
                f"baseline {old.describe()}"
            ),
            ActionsEnabled=False,
            EvaluationPeriods=1,
            DatapointsToAlarm=1,
            Threshold=value,
            ComparisonOperator="GreaterThanThreshold",
            Tags=names.tags(project, target),
            **metric,
        )
        progress(f"live gate: alarm {alarm.describe()} (baseline {old.describe()})")
        alarms.append(alarm)
    if "latency" not in {a.kind for a in alarms}:
        progress("live gate: the live variant has no p99 ModelLatency yet: no latency alarm")
    return alarms


def fired(aws: Aws, alarms: list[str], failure_reason: str) -> tuple[str, str] | None:
    """The alarm that rolled the update back and CloudWatch's reason: the first of
    ``alarms`` in ALARM, else the first SageMaker's FailureReason names (it may be OK
    again by the time the rollback ends)."""
    if not alarms:
        return None
    page = aws.call("cloudwatch", "describe_alarms", "live-gate alarms", AlarmNames=alarms)
    found = {a["AlarmName"]: a for a in page.get("MetricAlarms", [])}
    for name in alarms:
        if found.get(name, {}).get("StateValue") == "ALARM":
            return name, str(found[name].get("StateReason") or "no reason given")
    for name in alarms:
        if name in failure_reason:
            return name, str(found.get(name, {}).get("StateReason") or failure_reason)
    return None


def verdict(alarm: str, reason: str, old: dict[str, Any] | None) -> live.Verdict:
    """The failing verdict of a fired alarm, the baseline as the old version's signals."""
    return live.Verdict("fail", f"{alarm}: {reason}", live.Signals(**old) if old else None, None)


def signals_dict(signals: live.Signals) -> dict[str, Any]:
    return asdict(signals)


def delete_alarms(aws: Aws, project: str, target: str) -> list[str]:
    """Delete this target's live-gate alarms (named by the prefix, tagged project/target)."""
    prefix = alarm_prefix(project, target)
    owned: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"AlarmNamePrefix": prefix, "AlarmTypes": ["MetricAlarm"]}
        if token:
            params["NextToken"] = token
        page = aws.call("cloudwatch", "describe_alarms", f"alarms named {prefix}*", **params)
        for alarm in page.get("MetricAlarms", []):
            answer = aws.call(
                "cloudwatch",
                "list_tags_for_resource",
                f"alarm {alarm['AlarmName']}",
                ResourceARN=alarm["AlarmArn"],
            )
            tags = names.tag_map(answer.get("Tags", []))
            if tags.get(names.TAG_PROJECT) == project and tags.get(names.TAG_TARGET) == target:
                owned.append(alarm["AlarmName"])
        token = page.get("NextToken")
        if not token:
            break
    if owned:
        aws.call("cloudwatch", "delete_alarms", f"alarms {', '.join(owned)}", AlarmNames=owned)
    return owned
