"""A fake of Cloud Monitoring's MetricService.ListTimeSeries for the two Vertex AI online
prediction metrics, served at the wire (gRPC, on the fake Vertex server) to the official
``google-cloud-monitoring`` client.

Strict: each request is parsed into the client's own ``monitoring_v3.ListTimeSeriesRequest``
and checked as Cloud Monitoring checks it: ``name`` is ``projects/ID``; the filter is
``key = "value"`` clauses joined by ``AND`` with exactly one ``metric.type`` of a known
metric and only the labels of that metric and of the ``aiplatform.googleapis.com/Endpoint``
resource; the interval has an end time not before its start; an aligner needs an
alignment period of at least 60 s and must suit the metric's kind and value type (a
percentile of an INT64, a rate of a distribution are refused); a cross-series reducer
needs an aligner; ``group_by_fields`` name labels.

It serves what was recorded: the fake Vertex records one response (``response_count``,
by ``response_code``) and one latency (``prediction_latencies``, by ``latency_type``:
``model``, ``overhead`` and ``total``) per prediction it routes; tests may ``record`` more
(scripted series per deployed model id). Points are aligned into periods ending at the
interval's end, summed (INT64) or merged (distributions), newest first, and reduced
across series by ``REDUCE_SUM`` grouped by the requested labels.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.api import distribution_pb2, metric_pb2
from google.cloud import monitoring_v3

RESOURCE_TYPE = "aiplatform.googleapis.com/Endpoint"
RESOURCE_LABELS = {"resource_container", "location", "endpoint_id"}
RESPONSE_COUNT = "aiplatform.googleapis.com/prediction/online/response_count"
LATENCIES = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
INT64, DISTRIBUTION = "INT64", "DISTRIBUTION"


@dataclass(frozen=True)
class Descriptor:
    value_type: str
    labels: frozenset[str]


METRICS = {
    RESPONSE_COUNT: Descriptor(INT64, frozenset({"deployed_model_id", "response_code"})),
    LATENCIES: Descriptor(DISTRIBUTION, frozenset({"deployed_model_id", "latency_type"})),
}
Aligner = monitoring_v3.Aggregation.Aligner
Reducer = monitoring_v3.Aggregation.Reducer
# aligners valid on a DELTA metric of each value type (Cloud Monitoring's Aggregation docs)
VALID_ALIGNERS = {
    INT64: {Aligner.ALIGN_NONE, Aligner.ALIGN_DELTA, Aligner.ALIGN_RATE, Aligner.ALIGN_SUM,
            Aligner.ALIGN_MEAN, Aligner.ALIGN_MIN, Aligner.ALIGN_MAX, Aligner.ALIGN_COUNT},
    DISTRIBUTION: {Aligner.ALIGN_NONE, Aligner.ALIGN_DELTA, Aligner.ALIGN_SUM,
                   Aligner.ALIGN_COUNT, Aligner.ALIGN_PERCENTILE_99, Aligner.ALIGN_PERCENTILE_95,
                   Aligner.ALIGN_PERCENTILE_50, Aligner.ALIGN_PERCENTILE_05},
}  # fmt: skip
IMPLEMENTED_ALIGNERS = {Aligner.ALIGN_NONE, Aligner.ALIGN_DELTA, Aligner.ALIGN_SUM}
MIN_ALIGNMENT_SECONDS = 60
_NAME = re.compile(r"^projects/[a-z0-9][a-z0-9-]*$")
_CLAUSE = re.compile(
    r"^(metric\.type|resource\.type|(metric|resource)\.labels?\.([a-z_]+))"
    r'\s*=\s*"([^"]*)"$'
)
_GROUP = re.compile(r"^(metric|resource)\.labels?\.([a-z_]+)$")
# the buckets of the recorded latencies (ms): exponential, as Vertex's distribution
BUCKETS = distribution_pb2.Distribution.BucketOptions(
    exponential_buckets=distribution_pb2.Distribution.BucketOptions.Exponential(
        num_finite_buckets=60, growth_factor=1.25, scale=1.0
    )
)


class MonitoringError(Exception):
    """A request Cloud Monitoring refuses: answered with ``code`` and ``message``."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> MonitoringError:
    return MonitoringError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclass(frozen=True)
class Point:
    metric: str
    labels: tuple[tuple[str, str], ...]  # metric labels
    resource: tuple[tuple[str, str], ...]  # resource labels
    at: float  # epoch seconds
    value: float  # a count (INT64) or one latency in ms (DISTRIBUTION)


@dataclass(frozen=True)
class Query:
    metric: str
    descriptor: Descriptor
    equals: dict[str, str]  # "metric.X" / "resource.X" -> value


class FakeMonitoring:
    """The recorded points and the ListTimeSeries handler."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.points: list[Point] = []

    # -- recording ---------------------------------------------------------------------

    def record(
        self,
        endpoint: str,
        deployed_model_id: str,
        response_code: int,
        latency_ms: float,
        at: float | None = None,
        overhead_ms: float = 2.0,
    ) -> None:
        """One prediction served by ``deployed_model_id`` of ``endpoint`` (a resource name)."""
        parts = endpoint.split("/")
        resource = (("endpoint_id", parts[5]), ("location", parts[3]),
                    ("resource_container", parts[1]))  # fmt: skip
        now = time.time() if at is None else at
        model = ("deployed_model_id", deployed_model_id)
        code = (model, ("response_code", str(response_code)))
        points = [Point(RESPONSE_COUNT, code, resource, now, 1)]
        for kind, value in (("model", latency_ms), ("overhead", overhead_ms),
                            ("total", latency_ms + overhead_ms)):  # fmt: skip
            points.append(Point(LATENCIES, (model, ("latency_type", kind)), resource, now, value))
        with self.lock:
            self.points.extend(points)

    # -- ListTimeSeries ----------------------------------------------------------------

    def list_time_series(self, request: Any) -> Any:
        query = validate(request)
        start = _epoch(request.interval.start_time) if "start_time" in request.interval else None
        end = _epoch(request.interval.end_time)
        with self.lock:
            chosen = [p for p in self.points if _matches(p, query) and _inside(p.at, start, end)]
        if request.view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS:
            return monitoring_v3.ListTimeSeriesResponse(
                time_series=[
                    _series(query, labels, resource, [])
                    for (labels, resource) in _by_series(chosen)
                ]
            )
        aggregation = request.aggregation
        aligner = aggregation.per_series_aligner
        if aligner == Aligner.ALIGN_NONE:
            series = [
                _series(query, labels, resource, [_raw_point(query, p) for p in points])
                for (labels, resource), points in _by_series(chosen).items()
            ]
            return monitoring_v3.ListTimeSeriesResponse(time_series=series)
        period = aggregation.alignment_period.total_seconds()
        grouped = _grouped(chosen, aggregation)
        series = [
            _series(query, labels, resource, _aligned(query, points, start, end, period))
            for (labels, resource), points in grouped.items()
        ]
        return monitoring_v3.ListTimeSeriesResponse(time_series=series)

    def handlers(
        self, wrap: Callable[[str, Callable[[Any], Any]], Callable[[Any, Any], Any]]
    ) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            wrap("ListTimeSeries", self.list_time_series),
            request_deserializer=monitoring_v3.ListTimeSeriesRequest.deserialize,
            response_serializer=monitoring_v3.ListTimeSeriesResponse.serialize,
        )
        return grpc.method_handlers_generic_handler(
            "google.monitoring.v3.MetricService", {"ListTimeSeries": method}
        )


# -- validation -----------------------------------------------------------------------


def validate(request: Any) -> Query:
    """The parsed query of a ListTimeSeriesRequest, or the error Cloud Monitoring gives."""
    if not _NAME.match(request.name):
        raise _invalid(f"Invalid resource name {request.name!r}: expected projects/PROJECT_ID.")
    query = parse_filter(request.filter)
    if "end_time" not in request.interval:
        raise _invalid("The interval's end time is required.")
    if "start_time" in request.interval and (
        _epoch(request.interval.start_time) > _epoch(request.interval.end_time)
    ):
        raise _invalid("The interval's start time must not be after its end time.")
    aggregation = request.aggregation
    aligner, reducer = aggregation.per_series_aligner, aggregation.cross_series_reducer
    if aligner not in VALID_ALIGNERS[query.descriptor.value_type]:
        raise _invalid(
            f"The aligner {Aligner(aligner).name} cannot be applied to metrics with kind "
            f"DELTA and value type {query.descriptor.value_type}."
        )
    if aligner != Aligner.ALIGN_NONE:
        period = aggregation.alignment_period.total_seconds() if (
            "alignment_period" in aggregation
        ) else 0  # fmt: skip
        if period < MIN_ALIGNMENT_SECONDS:
            raise _invalid(
                f"The alignment period must be at least {MIN_ALIGNMENT_SECONDS}s "
                f"when an aligner is given; got {period}s."
            )
    if reducer != Reducer.REDUCE_NONE and aligner == Aligner.ALIGN_NONE:
        raise _invalid("A cross-series reducer requires a per-series aligner.")
    for field in aggregation.group_by_fields:
        match = _GROUP.match(field)
        if not match:
            raise _invalid(f"Invalid group_by_fields entry {field!r}.")
        _check_label(match.group(1), match.group(2), query.descriptor)
    if aligner not in IMPLEMENTED_ALIGNERS or reducer not in (Reducer.REDUCE_NONE,
                                                              Reducer.REDUCE_SUM):  # fmt: skip
        raise MonitoringError(grpc.StatusCode.UNIMPLEMENTED, "not served by this fake")
    return query


def parse_filter(text: str) -> Query:
    """``key = "value" AND ...``: one metric.type, only the metric's and resource's labels."""
    if not text.strip():
        raise _invalid("The filter is required and must name one metric.type.")
    equals: dict[str, str] = {}
    metric = None
    for clause in re.split(r"\s+AND\s+", text.strip()):
        match = _CLAUSE.match(clause.strip())
        if not match:
            raise _invalid(f"Could not parse filter {text!r} at {clause!r}.")
        key, kind, label, value = match.groups()
        if key == "metric.type":
            if metric is not None:
                raise _invalid(f"The filter {text!r} names metric.type twice.")
            metric = value
        elif key == "resource.type":
            if value != RESOURCE_TYPE:
                raise _invalid(f"No time series of resource type {value!r} for this metric.")
        else:
            equals[f"{kind}.{label}"] = value
    if metric is None:
        raise _invalid(f"The filter {text!r} must name one metric.type.")
    descriptor = METRICS.get(metric)
    if descriptor is None:
        raise MonitoringError(
            grpc.StatusCode.NOT_FOUND, f"Cannot find metric(s) that match type = {metric!r}."
        )
    for key in equals:
        kind, label = key.split(".", 1)
        _check_label(kind, label, descriptor)
    return Query(metric, descriptor, equals)


def _check_label(kind: str, label: str, descriptor: Descriptor) -> None:
    known = descriptor.labels if kind == "metric" else RESOURCE_LABELS
    if label not in known:
        raise _invalid(f"Unknown {kind} label {label!r}; known: {sorted(known)}.")


# -- serving --------------------------------------------------------------------------


def _epoch(stamp: Any) -> float:
    return float(stamp.timestamp())


def _inside(at: float, start: float | None, end: float) -> bool:
    return at == end if start is None else start < at <= end


def _matches(point: Point, query: Query) -> bool:
    if point.metric != query.metric:
        return False
    labels = {**{f"metric.{k}": v for k, v in point.labels},
              **{f"resource.{k}": v for k, v in point.resource}}  # fmt: skip
    return all(labels.get(k) == v for k, v in query.equals.items())


Key = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


def _by_series(points: list[Point]) -> dict[Key, list[Point]]:
    found: dict[Key, list[Point]] = {}
    for point in points:
        found.setdefault((point.labels, point.resource), []).append(point)
    return found


def _grouped(points: list[Point], aggregation: Any) -> dict[Key, list[Point]]:
    """The series after the cross-series reducer: each kept (REDUCE_NONE), or one per
    value of the ``group_by_fields`` (REDUCE_SUM), holding only those labels."""
    if aggregation.cross_series_reducer == Reducer.REDUCE_NONE:
        return _by_series(points)
    fields = [_GROUP.match(f).groups() for f in aggregation.group_by_fields]  # type: ignore[union-attr]
    found: dict[Key, list[Point]] = {}
    for point in points:
        metric, resource = dict(point.labels), dict(point.resource)
        labels = tuple((n, metric.get(n, "")) for kind, n in fields if kind == "metric")
        res = tuple((n, resource.get(n, "")) for kind, n in fields if kind == "resource")
        found.setdefault((labels, res), []).append(point)
    return found


def _series(query: Query, labels: Any, resource: Any, points: list[Any]) -> Any:
    descriptor = metric_pb2.MetricDescriptor
    return monitoring_v3.TimeSeries(
        metric={"type": query.metric, "labels": dict(labels)},
        resource={"type": RESOURCE_TYPE, "labels": dict(resource)},
        metric_kind=descriptor.MetricKind.Value("DELTA"),
        value_type=descriptor.ValueType.Value(query.descriptor.value_type),
        points=points,
    )


def _aligned(query: Query, points: list[Point], start: float | None, end: float,
             period: float) -> list[Any]:  # fmt: skip
    """One point per alignment period ending at ``end`` that holds data, newest first."""
    windows: dict[int, list[Point]] = {}
    for point in points:
        windows.setdefault(math.floor((end - point.at) / period), []).append(point)
    result = []
    for index in sorted(windows):
        window_end = end - index * period
        interval = {"start_time": _stamp(window_end - period), "end_time": _stamp(window_end)}
        result.append({"interval": interval, "value": _value(query, windows[index])})
    return result


def _raw_point(query: Query, point: Point) -> Any:
    interval = {"start_time": _stamp(point.at - 1e-3), "end_time": _stamp(point.at)}
    return {"interval": interval, "value": _value(query, [point])}


def _value(query: Query, points: list[Point]) -> Any:
    if query.descriptor.value_type == INT64:
        return monitoring_v3.TypedValue(int64_value=int(sum(p.value for p in points)))
    return monitoring_v3.TypedValue(distribution_value=distribution([p.value for p in points]))


def distribution(values: list[float]) -> distribution_pb2.Distribution:
    """``values`` (ms) as a Distribution over BUCKETS (trailing empty buckets left out)."""
    exp = BUCKETS.exponential_buckets
    counts = [0] * (exp.num_finite_buckets + 2)
    for value in values:
        index = 0
        while index <= exp.num_finite_buckets and value >= exp.scale * exp.growth_factor**index:
            index += 1
        counts[index] += 1
    while counts and counts[-1] == 0:
        counts.pop()
    mean = sum(values) / len(values) if values else 0.0
    return distribution_pb2.Distribution(
        count=len(values),
        mean=mean,
        sum_of_squared_deviation=sum((v - mean) ** 2 for v in values),
        bucket_options=BUCKETS,
        bucket_counts=counts,
    )


def _stamp(epoch: float) -> Any:
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(epoch * 1e9))
    return stamp
