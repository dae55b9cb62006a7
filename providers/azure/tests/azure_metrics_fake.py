"""Azure Monitor metrics of the fake's online endpoints, at the wire.

``GET {endpoint ARM id}/providers/Microsoft.Insights/metrics`` answers what the fake's
scoring URI really served (``Served``: when, which deployment, the status, how long the
runtime took), bucketed by minute as Azure Monitor's PT1M grain, for the endpoint metrics
deployer reads (Microsoft.MachineLearningServices/workspaces/onlineEndpoints, from Azure
Monitor's supported-metrics reference):

- ``RequestsPerMinute`` (Count; dimensions deployment, statusCode, statusCodeClass,
  modelStatusCode);
- ``RequestLatency_P99`` (Milliseconds, aggregation Average; dimension deployment).

Each request is checked against azure-monitor-query's own generated request builder
(``build_metrics_list_request``): the api-version the client sends, the query parameters
it can produce, and their formats (ISO 8601 timespan and interval, known metric names,
aggregations, and a ``$filter`` naming only the metric's dimensions, in the documented
``name eq 'value' [or ...] and ...`` grammar). A request that breaks them is answered
400 with Azure's error body and kept in ``refused``. Every answer is parsed by the
client's own ``MetricsQueryResult._from_generated`` before it is sent.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

AGGREGATIONS = ("average", "minimum", "maximum", "total", "count")
# metric -> (unit, dimensions), from the supported-metrics reference of onlineEndpoints
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "RequestsPerMinute": (
        "Count",
        ("deployment", "statusCode", "statusCodeClass", "modelStatusCode"),
    ),
    "RequestLatency_P99": ("Milliseconds", ("deployment",)),
}
GRAINS = {"PT1M": 60, "PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600}
TERM = re.compile(r"^\s*(?P<name>[A-Za-z_]+)\s+eq\s+'(?P<value>[^']*)'\s*$")


@dataclass(frozen=True)
class Served:
    """One scoring call as Azure Monitor would count it."""

    at: float  # epoch seconds
    deployment: str
    status: int
    latency_ms: float


def client_contract() -> tuple[str, frozenset[str]]:
    """(api-version, query parameter names) that azure-monitor-query's generated builder
    produces for the metrics list operation, every optional argument set."""
    from urllib.parse import parse_qs, urlsplit

    from azure.monitor.query._generated.metrics.operations._operations import (
        build_metrics_list_request,
    )

    request = build_metrics_list_request(
        "subscriptions/s",
        timespan="a/b",
        interval=dt.timedelta(minutes=1),
        metricnames="m",
        aggregation="total",
        top=1,
        orderby="total asc",
        filter="a eq 'b'",
        result_type="Data",
        metricnamespace="n",
        auto_adjust_timegrain=True,
        validate_dimensions=True,
        rollupby="a",
    )
    query = parse_qs(urlsplit(request.url).query)
    return query["api-version"][0], frozenset(query)


class MetricsProblem(ValueError):
    """What the real service would answer 400 for."""


class FakeMetrics:
    """The served calls of every endpoint and the metrics API over them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clock: Callable[[], float] = time.time  # when a call is served (epoch seconds)
        self.served: dict[str, list[Served]] = {}  # endpoint -> calls
        self.queries: list[dict[str, str]] = []  # accepted query strings
        self.refused: list[str] = []
        self.api_version, self.parameters = client_contract()

    def record(self, endpoint: str, call: Served) -> None:
        with self.lock:
            self.served.setdefault(endpoint, []).append(call)

    # -- the API -------------------------------------------------------------------------

    def answer(self, resource_id: str, endpoint: str, query: dict[str, str]) -> tuple[int, Any]:
        """(status, body) of ``GET {resource_id}/providers/Microsoft.Insights/metrics``."""
        try:
            body = self._query(resource_id, endpoint, query)
        except MetricsProblem as problem:
            self.refused.append(str(problem))
            return 400, {"code": "BadRequest", "message": str(problem)}
        from azure.monitor.query import MetricsQueryResult

        MetricsQueryResult._from_generated(dict(body))  # the client must read it
        self.queries.append(dict(query))
        return 200, body

    def _query(self, resource_id: str, endpoint: str, query: dict[str, str]) -> dict[str, Any]:
        unknown = set(query) - self.parameters
        if unknown:
            raise MetricsProblem(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        if query.get("api-version") != self.api_version:
            raise MetricsProblem(
                f"api-version {query.get('api-version')!r}: this fake serves the one "
                f"azure-monitor-query sends, {self.api_version}"
            )
        start, end = _timespan(query.get("timespan", ""))
        grain = query.get("interval", "PT1M")
        if grain not in GRAINS:
            raise MetricsProblem(f"Invalid time grain {grain!r}; supported: {sorted(GRAINS)}")
        names = [n for n in query.get("metricnames", "").split(",") if n]
        if not names:
            raise MetricsProblem("metricnames is required")
        for name in names:
            if name not in METRICS:
                raise MetricsProblem(
                    f"Failed to find metric configuration for provider: "
                    f"Microsoft.MachineLearningServices, resource Type: "
                    f"workspaces/onlineEndpoints, metric: {name}, Valid metrics: "
                    f"{', '.join(METRICS)}"
                )
        aggregations = [a.lower() for a in query.get("aggregation", "average").split(",") if a]
        bad = [a for a in aggregations if a not in AGGREGATIONS]
        if bad:
            raise MetricsProblem(f"Invalid aggregation(s) {bad}; valid: {AGGREGATIONS}")
        clauses = _filter(query.get("$filter"))
        for name in names:
            extra = set(clauses) - set(METRICS[name][1])
            if extra:
                raise MetricsProblem(
                    f"Metric: {name} does not support requested dimension combination: "
                    f"{', '.join(sorted(extra))}, supported ones are: "
                    f"{', '.join(METRICS[name][1])}"
                )
        top = int(query.get("top", "10"))
        seconds = GRAINS[grain]
        with self.lock:
            calls = [
                c
                for c in self.served.get(endpoint, [])
                if start.timestamp() <= _bucket(c.at, seconds) < end.timestamp()
            ]
        values = [
            self._metric(resource_id, name, calls, clauses, aggregations, seconds, top)
            for name in names
        ]
        return {
            "cost": len(calls),
            "timespan": query["timespan"],
            "interval": grain,
            "namespace": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "resourceregion": "westeurope",
            "value": values,
        }

    def _metric(
        self,
        resource_id: str,
        name: str,
        calls: list[Served],
        clauses: dict[str, set[str]],
        aggregations: list[str],
        seconds: int,
        top: int,
    ) -> dict[str, Any]:
        dims = list(clauses)
        groups: dict[tuple[str, ...], dict[float, list[Served]]] = {}
        for call in calls:
            key = tuple(_dimension(call, d) for d in dims)
            if all("*" in clauses[d] or v in clauses[d] for d, v in zip(dims, key, strict=True)):
                groups.setdefault(key, {}).setdefault(_bucket(call.at, seconds), []).append(call)
        series = []
        for key, buckets in sorted(groups.items())[:top]:
            data = []
            for at, bucket in sorted(buckets.items()):
                values = (
                    [1.0] * len(bucket)
                    if name == "RequestsPerMinute"
                    else [_p99([c.latency_ms for c in bucket])]
                )
                point: dict[str, Any] = {"timeStamp": _iso(at)}
                for aggregation in aggregations:
                    point[aggregation] = _aggregate(aggregation, values)
                data.append(point)
            series.append({
                "metadatavalues": [
                    {"name": {"value": d, "localizedValue": d}, "value": v}
                    for d, v in zip(dims, key, strict=True)
                ],
                "data": data,
            })  # fmt: skip
        return {
            "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{name}",
            "type": "Microsoft.Insights/metrics",
            "name": {"value": name, "localizedValue": name},
            "unit": METRICS[name][0],
            "timeseries": series,
            "errorCode": "Success",
        }


def _timespan(text: str) -> tuple[dt.datetime, dt.datetime]:
    import isodate

    start_text, sep, end_text = text.partition("/")
    if not sep:
        raise MetricsProblem(f"timespan {text!r}: expected 'start/end' in ISO 8601")
    try:
        start = isodate.parse_datetime(start_text)
        end = isodate.parse_datetime(end_text)
    except (ValueError, isodate.ISO8601Error) as exc:
        raise MetricsProblem(f"timespan {text!r}: {exc}") from None
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise MetricsProblem(f"timespan {text!r}: expected an aware start before its end")
    return start, end


def _filter(text: str | None) -> dict[str, set[str]]:
    """``A eq 'a1' or A eq 'a2' and B eq '*'`` -> {A: {a1, a2}, B: {*}}; one name per
    or-group, as the service requires."""
    if not text:
        return {}
    clauses: dict[str, set[str]] = {}
    for group in re.split(r"\s+and\s+", text):
        names = set()
        for term in re.split(r"\s+or\s+", group):
            match = TERM.match(term)
            if match is None:
                raise MetricsProblem(f"Invalid $filter {text!r}: cannot parse {term!r}")
            names.add(match["name"])
            clauses.setdefault(match["name"], set()).add(match["value"])
        if len(names) > 1:
            raise MetricsProblem(
                f"Invalid $filter {text!r}: the 'or' operator cannot separate two "
                "different metadata names"
            )
    return clauses


def _dimension(call: Served, name: str) -> str:
    if name == "deployment":
        return call.deployment
    if name in ("statusCode", "modelStatusCode"):
        return str(call.status)
    return f"{call.status // 100}xx"  # statusCodeClass


def _bucket(at: float, seconds: int) -> float:
    return math.floor(at / seconds) * seconds


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _p99(values: Iterable[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _aggregate(name: str, values: list[float]) -> float:
    if name == "total":
        return float(sum(values))
    if name == "count":
        return float(len(values))
    if name == "minimum":
        return min(values)
    if name == "maximum":
        return max(values)
    return sum(values) / len(values)
