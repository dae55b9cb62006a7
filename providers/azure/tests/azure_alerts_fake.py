"""Azure Monitor metric alert rules of the fake ARM, at the wire.

``PUT``/``GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Insights/
metricAlerts/{name}?api-version=2018-03-01`` (MetricAlerts_CreateOrUpdate and _Get of
azure-rest-api-specs ``specification/monitor/resource-manager/Microsoft.Insights/stable/
2018-03-01/metricAlert_API.json``). A PUT creates the rule or replaces the one of that
name (names are case-insensitive, as ARM's) and answers 200 with the resource, as the
spec says; a GET answers it or 404.

Each PUT body is checked as the service would, and refused with 400 and the Insights
error body (``{"code", "message"}``, the spec's ErrorResponse) naming every problem; the
problems are kept in ``refused``:

- the name: 1-260 characters, none of ``*#&+:<>?@%{}\\/`` nor control characters, not
  ending with a space or a period (Azure's resource naming rules, Microsoft.Insights
  metricAlerts);
- ``location`` (required, a non-empty string) and ``tags`` (string values; at most 50
  pairs, names up to 512 characters without ``<>%&\\?/``, values up to 256: Azure's tag
  limits);
- ``properties``: the fields the SDK's MetricAlertResource marks required (``severity``
  an integer 0-4, ``enabled`` a boolean, ``scopes`` a non-empty list of resource ids,
  ``evaluationFrequency``, ``windowSize``, ``criteria``); ``evaluationFrequency`` one of
  PT1M, PT5M, PT15M, PT30M, PT1H and ``windowSize`` one of PT1M, PT5M, PT15M, PT30M,
  PT1H, PT6H, PT12H, PT24H (P1D), the window not shorter than the frequency; optional
  ``description``/``autoMitigate``/``actions`` of their types;
- the scopes: resources that exist in the fake (its online endpoints), one only for
  single-resource criteria, of ``targetResourceType`` when given;
- ``criteria``: ``odata.type`` one of the spec's three (web tests are not served here),
  ``allOf`` a non-empty list of criteria with ``criterionType``, ``name``,
  ``metricName`` and ``timeAggregation`` (Average, Count, Minimum, Maximum, Total);
  static ones an ``operator`` of the six and a finite number ``threshold``, dynamic ones
  their operator, ``alertSensitivity`` and ``failingPeriods``; the metric one the scope's
  namespace publishes (azure_metrics_fake.METRICS: Azure validates the metric unless
  ``skipMetricValidation``), in that namespace, and dimensions of that metric;
- and the body deserializes as azure-mgmt-monitor's ``MetricAlertResource`` (the SDK
  generated from the same spec), which catches values of the wrong type.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any, TypeGuard
from urllib.parse import unquote

from azure_metrics_fake import METRICS

API_VERSION = "2018-03-01"
TYPE = "Microsoft.Insights/metricAlerts"
ENDPOINTS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
FREQUENCIES = {"PT1M": 1, "PT5M": 5, "PT15M": 15, "PT30M": 30, "PT1H": 60}
WINDOWS = {**FREQUENCIES, "PT6H": 360, "PT12H": 720, "PT24H": 1440}
SINGLE = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
MULTIPLE = "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria"
WEBTEST = "Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria"
STATIC_OPERATORS = (
    "Equals",
    "NotEquals",
    "GreaterThan",
    "GreaterThanOrEqual",
    "LessThan",
    "LessThanOrEqual",
)
DYNAMIC_OPERATORS = ("GreaterThan", "LessThan", "GreaterOrLessThan")
SENSITIVITIES = ("Low", "Medium", "High")
AGGREGATIONS = ("Average", "Count", "Minimum", "Maximum", "Total")
NAME_FORBIDDEN = set("*#&+:<>?@%{}\\/")
TAG_NAME_FORBIDDEN = set("<>%&\\?/")
MAX_TAGS, MAX_TAG_NAME, MAX_TAG_VALUE = 50, 512, 256
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")

# a resource id -> its resource type, or None when the fake has no such resource
ScopeType = Callable[[str], str | None]


def minutes(value: Any) -> float | None:
    """An ISO 8601 duration (days, hours, minutes, seconds) in minutes, or None."""
    found = _DURATION.match(value) if isinstance(value, str) and value != "P" else None
    if found is None or value.endswith("T"):
        return None
    d, h, m, s = (int(found[k] or 0) for k in "dhms")
    return d * 1440 + h * 60 + m + s / 60


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def name_problems(name: str) -> list[str]:
    where = f"metricAlert name {name!r}"
    if not 1 <= len(name) <= 260:
        return [f"{where}: must be 1-260 characters, got {len(name)}"]
    problems = []
    bad = sorted({c for c in name if c in NAME_FORBIDDEN or ord(c) < 32 or ord(c) == 127})
    if bad:
        problems.append(f"{where}: may not contain {''.join(bad)!r}")
    if name.endswith((" ", ".")):
        problems.append(f"{where}: may not end with a space or a period")
    return problems


def tag_problems(tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, dict):
        return [f"tags: expected a map of strings, got {tags!r}"]
    problems = []
    if len(tags) > MAX_TAGS:
        problems.append(f"tags: at most {MAX_TAGS} tags, got {len(tags)}")
    for key, value in tags.items():
        if len(key) > MAX_TAG_NAME or set(key) & TAG_NAME_FORBIDDEN or not key:
            problems.append(
                f"tags: the name {key[:40]!r} must be 1-{MAX_TAG_NAME} characters without <>%&\\?/"
            )
        if not isinstance(value, str):
            problems.append(f"tags.{key}: {value!r} is not a string")
        elif len(value) > MAX_TAG_VALUE:
            problems.append(f"tags.{key}: the value is over {MAX_TAG_VALUE} characters")
    return problems


def _sdk_problems(body: dict[str, Any]) -> list[str]:
    """What azure-mgmt-monitor's MetricAlertResource cannot deserialize."""
    from azure.mgmt.monitor.models import MetricAlertResource

    try:
        MetricAlertResource.deserialize(body)
    except (TypeError, ValueError) as exc:  # azure-core's DeserializationError is a ValueError
        return [f"does not deserialize as MetricAlertResource ({exc})"]
    return []


class MetricAlertService:
    """The metric alert rules of the fake's resource groups (``rules``), and the checks."""

    def __init__(self, subscription: str, resource_group: str, scope_type: ScopeType) -> None:
        self.subscription = subscription
        self.resource_group = resource_group
        self.scope_type = scope_type
        self.rules: dict[str, dict[str, Any]] = {}  # lower-cased name -> the resource
        self.refused: list[str] = []

    def get_rule(self, name: str) -> dict[str, Any] | None:
        return self.rules.get(name.lower())

    # -- the API ---------------------------------------------------------------------------

    def _where(self, sub: str, rg: str, query: dict[str, str]) -> tuple[int, Any] | None:
        if sub != self.subscription:
            return 404, _error(
                "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
            )
        if rg.lower() != self.resource_group.lower():
            return 404, _error(
                "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )
        if query.get("api-version") != API_VERSION:
            return 400, _error(
                "InvalidApiVersionParameter",
                f"api-version {query.get('api-version')!r}: this fake serves metricAlerts at "
                f"{API_VERSION} only",
            )
        return None

    def put(
        self, sub: str, rg: str, rule: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        wrong = self._where(sub, rg, query)
        if wrong is not None:
            return wrong
        name = unquote(rule)
        problems = self.problems(name, body)
        if problems:
            self.refused.extend(problems)
            return 400, _error("BadRequest", "; ".join(problems))
        resource = {
            "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{TYPE}/{name}",
            "name": name,
            "type": TYPE,
            "location": body["location"],
            "tags": body.get("tags") or {},
            "properties": {
                "autoMitigate": True,
                "actions": [],
                **body["properties"],
                "lastUpdatedTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "isMigrated": False,
            },
        }
        self.rules[name.lower()] = resource
        return 200, resource

    def get(self, sub: str, rg: str, rule: str, query: dict[str, str]) -> tuple[int, Any]:
        wrong = self._where(sub, rg, query)
        if wrong is not None:
            return wrong
        found = self.get_rule(unquote(rule))
        if found is None:
            return 404, _error(
                "ResourceNotFound", f"The metric alert '{unquote(rule)}' was not found."
            )
        return 200, found

    # -- the checks ------------------------------------------------------------------------

    def problems(self, name: str, body: Any) -> list[str]:
        """Why the service would refuse ``body`` as the metric alert ``name`` (none: [])."""
        problems = name_problems(name)
        if not isinstance(body, dict):
            return [*problems, f"the body must be a JSON object, got {body!r}"]
        location = body.get("location")
        if not isinstance(location, str) or not location:
            problems.append("location is required (a region or 'global')")
        problems += tag_problems(body.get("tags"))
        properties = body.get("properties")
        if not isinstance(properties, dict):
            return [*problems, "properties is required (an object)"]
        problems += self._property_problems(properties)
        return problems or _sdk_problems(body)

    def _property_problems(self, p: dict[str, Any]) -> list[str]:
        problems = []
        where = "properties"
        for field in ("severity", "enabled", "scopes", "evaluationFrequency", "windowSize"):
            if field not in p or p[field] is None:
                problems.append(f"{where}.{field} is required")
        severity = p.get("severity")
        if severity is not None and (
            not isinstance(severity, int) or isinstance(severity, bool) or not 0 <= severity <= 4
        ):
            problems.append(f"{where}.severity: {severity!r} is not an integer 0-4")
        if "enabled" in p and not isinstance(p["enabled"], bool):
            problems.append(f"{where}.enabled: {p['enabled']!r} is not a boolean")
        for field, kind in (("description", str), ("autoMitigate", bool)):
            if p.get(field) is not None and not isinstance(p[field], kind):
                problems.append(f"{where}.{field}: {p[field]!r} is not a {kind.__name__}")
        frequency = p.get("evaluationFrequency")
        window = p.get("windowSize")
        every, size = minutes(frequency), minutes(window)
        if frequency is not None and every not in FREQUENCIES.values():
            problems.append(
                f"{where}.evaluationFrequency: {frequency!r} is not one of {', '.join(FREQUENCIES)}"
            )
        if window is not None and size not in WINDOWS.values():
            problems.append(
                f"{where}.windowSize: {window!r} is not one of {', '.join(WINDOWS)} (or P1D)"
            )
        if every is not None and size is not None and size < every:
            problems.append(
                f"{where}.windowSize {window} is shorter than evaluationFrequency {frequency}"
            )
        actions = p.get("actions")
        if actions is not None and (
            not isinstance(actions, list)
            or not all(
                isinstance(a, dict) and isinstance(a.get("actionGroupId"), str) for a in actions
            )
        ):
            problems.append(f"{where}.actions: expected [{{'actionGroupId': id}}, ...]")
        types = self._scope_problems(p, problems)
        criteria = p.get("criteria")
        if not isinstance(criteria, dict):
            problems.append(f"{where}.criteria is required (an object with odata.type)")
        else:
            problems += self._criteria_problems(criteria, types)
        return problems

    def _scope_problems(self, p: dict[str, Any], problems: list[str]) -> list[str]:
        """Check the scopes (appending to ``problems``); the resource types found."""
        scopes = p.get("scopes")
        if scopes is None:
            return []
        if (
            not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) for s in scopes)
        ):
            problems.append(f"properties.scopes: {scopes!r} is not a non-empty list of ids")
            return []
        types = []
        for index, scope in enumerate(scopes):
            found = self.scope_type(scope)
            if found is None:
                problems.append(f"properties.scopes[{index}]: the resource {scope} was not found")
            else:
                types.append(found)
        target = p.get("targetResourceType")
        if target is not None and any(t.lower() != str(target).lower() for t in types):
            problems.append(
                f"properties.targetResourceType: {target!r} is not the scope's type "
                f"({', '.join(sorted(set(types)))})"
            )
        criteria = p.get("criteria")
        single = isinstance(criteria, dict) and criteria.get("odata.type") == SINGLE
        if single and len(scopes) != 1:
            problems.append(
                f"properties.scopes: {SINGLE} takes exactly one resource, got {len(scopes)}"
            )
        return types

    def _criteria_problems(self, criteria: dict[str, Any], types: list[str]) -> list[str]:
        where = "properties.criteria"
        kind = criteria.get("odata.type")
        if kind not in (SINGLE, MULTIPLE, WEBTEST):
            return [f"{where}.odata.type: {kind!r} is not one of {SINGLE}, {MULTIPLE}, {WEBTEST}"]
        if kind == WEBTEST:
            return [f"{where}: {WEBTEST} needs an Application Insights web test (not served here)"]
        all_of = criteria.get("allOf")
        if not isinstance(all_of, list) or not all_of:
            return [f"{where}.allOf: expected a non-empty list of criteria, got {all_of!r}"]
        problems = []
        for index, criterion in enumerate(all_of):
            problems += self._criterion_problems(criterion, f"{where}.allOf[{index}]", types)
        names = [c.get("name") for c in all_of if isinstance(c, dict)]
        if len(set(names)) != len(names):
            problems.append(f"{where}.allOf: the criteria's names must differ, got {names}")
        return problems

    def _criterion_problems(self, c: Any, where: str, types: list[str]) -> list[str]:
        if not isinstance(c, dict):
            return [f"{where}: expected an object, got {c!r}"]
        problems = [
            f"{where}.{field} is required"
            for field in ("criterionType", "name", "metricName", "timeAggregation")
            if not isinstance(c.get(field), str) or not c[field]
        ]
        kind = c.get("criterionType")
        if kind == "StaticThresholdCriterion":
            if c.get("operator") not in STATIC_OPERATORS:
                problems.append(
                    f"{where}.operator: {c.get('operator')!r} is not one of "
                    f"{', '.join(STATIC_OPERATORS)}"
                )
            threshold = c.get("threshold")
            if not _is_number(threshold) or not math.isfinite(threshold):
                problems.append(f"{where}.threshold: {threshold!r} is not a number")
        elif kind == "DynamicThresholdCriterion":
            problems += _dynamic_problems(c, where)
        elif kind is not None:
            problems.append(
                f"{where}.criterionType: {kind!r} is not StaticThresholdCriterion or "
                "DynamicThresholdCriterion"
            )
        aggregation = c.get("timeAggregation")
        if aggregation is not None and aggregation not in AGGREGATIONS:
            problems.append(
                f"{where}.timeAggregation: {aggregation!r} is not one of {', '.join(AGGREGATIONS)}"
            )
        problems += _metric_problems(c, where, types)
        return problems


def _dynamic_problems(c: dict[str, Any], where: str) -> list[str]:
    problems = []
    if c.get("operator") not in DYNAMIC_OPERATORS:
        problems.append(
            f"{where}.operator: {c.get('operator')!r} is not one of {', '.join(DYNAMIC_OPERATORS)}"
        )
    if c.get("alertSensitivity") not in SENSITIVITIES:
        problems.append(
            f"{where}.alertSensitivity: {c.get('alertSensitivity')!r} is not one of "
            f"{', '.join(SENSITIVITIES)}"
        )
    periods = c.get("failingPeriods")
    if not isinstance(periods, dict):
        return [*problems, f"{where}.failingPeriods is required"]
    total, failing = (
        periods.get("numberOfEvaluationPeriods"),
        periods.get("minFailingPeriodsToAlert"),
    )
    if not _is_number(total) or not _is_number(failing) or not 1 <= failing <= total:
        problems.append(
            f"{where}.failingPeriods: minFailingPeriodsToAlert {failing!r} must be a number "
            f"from 1 to numberOfEvaluationPeriods {total!r}"
        )
    return problems


def _metric_problems(c: dict[str, Any], where: str, types: list[str]) -> list[str]:
    """The metric, its namespace and dimensions against what the scopes publish."""
    namespace = c.get("metricNamespace")
    problems = []
    if namespace is not None and types and any(t.lower() != str(namespace).lower() for t in types):
        problems.append(f"{where}.metricNamespace: {namespace!r} is not the scope's namespace")
    if c.get("skipMetricValidation") is True or not types:
        return problems
    metric = c.get("metricName")
    if any(t.lower() != ENDPOINTS.lower() for t in types):
        return problems  # the fake knows the metrics of online endpoints only
    if metric not in METRICS:
        return [
            *problems,
            f"{where}.metricName: {ENDPOINTS} has no metric {metric!r} "
            f"(it has {', '.join(METRICS)})",
        ]
    for index, dimension in enumerate(c.get("dimensions") or []):
        at = f"{where}.dimensions[{index}]"
        if not isinstance(dimension, dict):
            problems.append(f"{at}: expected an object")
            continue
        if dimension.get("name") not in METRICS[metric][1]:
            problems.append(f"{at}.name: {metric} has no dimension {dimension.get('name')!r}")
        if dimension.get("operator") not in ("Include", "Exclude"):
            problems.append(
                f"{at}.operator: {dimension.get('operator')!r} is not Include or Exclude"
            )
        values = dimension.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{at}.values: expected a list of strings")
    return problems


def _error(code: str, message: str) -> dict[str, str]:
    """Insights' ErrorResponse (not wrapped in ``error``)."""
    return {"code": code, "message": message}
