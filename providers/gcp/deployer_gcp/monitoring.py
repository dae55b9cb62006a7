"""Live signals of a deployed model from Cloud Monitoring, for the live gates of a rollout.

Vertex AI writes two metrics per deployed model on the ``aiplatform.googleapis.com/Endpoint``
monitored resource (labels ``endpoint_id``, ``location``):
- ``aiplatform.googleapis.com/prediction/online/response_count``: DELTA INT64, the
  responses by ``response_code`` and ``deployed_model_id``;
- ``aiplatform.googleapis.com/prediction/online/prediction_latencies``: DELTA DISTRIBUTION
  in milliseconds by ``deployed_model_id`` (and ``latency_type``: the ``model`` series is
  read when there is one: the container's own time, which is what a new version changes).

Each read is one ListTimeSeries per metric with a filter naming the endpoint and the
deployed model, aligned over the whole window (``ALIGN_SUM``/``ALIGN_DELTA``) and summed
across series: the response counts grouped by ``response_code`` (5xx are errors), the
latencies grouped by ``latency_type`` into one distribution, whose 99th percentile is
interpolated from its buckets as Prometheus's ``histogram_quantile`` does.

The official ``google-cloud-monitoring`` client (gRPC), imported on first use.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from deployer.providers import live as gates
from deployer_gcp.errors import translated

RESOURCE_TYPE = "aiplatform.googleapis.com/Endpoint"
RESPONSE_COUNT = "aiplatform.googleapis.com/prediction/online/response_count"
LATENCIES = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
DEFAULT_HOST = "monitoring.googleapis.com"
MIN_ALIGNMENT_SECONDS = 60  # Cloud Monitoring refuses a shorter alignment period
PREFERRED_LATENCY_TYPES = ("model", "total")
Clock = Callable[[], float]


def metric_filter(metric: str, endpoint: str, deployed_model_id: str) -> str:
    """The ListTimeSeries filter for ``metric`` of one deployed model of ``endpoint``
    (a resource name ``projects/P/locations/L/endpoints/E``)."""
    parts = endpoint.split("/")
    return (
        f'metric.type = "{metric}" AND resource.type = "{RESOURCE_TYPE}" '
        f'AND resource.labels.location = "{parts[3]}" '
        f'AND resource.labels.endpoint_id = "{parts[5]}" '
        f'AND metric.labels.deployed_model_id = "{deployed_model_id}"'
    )


class Monitoring:
    """Reads a deployed model's signals over a window (the MetricServiceClient is created
    on first use)."""

    def __init__(self, project: str, host: str | None, credentials: Any) -> None:
        self.project = project
        self.host = host or DEFAULT_HOST
        self.credentials = credentials
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.api_core.client_options import ClientOptions
            from google.cloud import monitoring_v3

            self._client = monitoring_v3.MetricServiceClient(
                credentials=self.credentials,
                client_options=ClientOptions(api_endpoint=self.host),
            )
        return self._client

    def signals(
        self, endpoint: str, deployed_model_id: str, start: float, end: float
    ) -> gates.Signals:
        """What ``deployed_model_id`` served between ``start`` and ``end`` (epoch seconds)."""
        codes = self._series(RESPONSE_COUNT, endpoint, deployed_model_id, start, end,
                             "ALIGN_SUM", "metric.labels.response_code")  # fmt: skip
        counts = response_counts(codes)
        requests = sum(counts.values())
        errors = sum(n for code, n in counts.items() if is_error(code))
        latencies = self._series(LATENCIES, endpoint, deployed_model_id, start, end,
                                 "ALIGN_DELTA", "metric.labels.latency_type")  # fmt: skip
        return gates.Signals(requests, errors, p99_ms(latencies))

    def _series(self, metric: str, endpoint: str, deployed_model_id: str, start: float,
                end: float, aligner: str, group_by: str) -> list[Any]:  # fmt: skip
        from google.cloud import monitoring_v3

        period = max(MIN_ALIGNMENT_SECONDS, math.ceil(end - start))
        aggregation = monitoring_v3.Aggregation(
            alignment_period={"seconds": period},
            per_series_aligner=getattr(monitoring_v3.Aggregation.Aligner, aligner),
            cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
            group_by_fields=[group_by],
        )
        request = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.project}",
            filter=metric_filter(metric, endpoint, deployed_model_id),
            interval=monitoring_v3.TimeInterval(start_time=_stamp(start), end_time=_stamp(end)),
            aggregation=aggregation,
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )
        with translated("read Cloud Monitoring metric", metric):
            return list(self.client.list_time_series(request=request))

    def reader(
        self, endpoint: str, new_id: str, old_id: str | None, clock: Clock = time.time
    ) -> gates.Reading:
        """A live-gate ``read``: both deployed models' signals since the reader was made
        (the start of the step)."""
        start = clock()

        def read() -> tuple[gates.Signals | None, gates.Signals]:
            end = max(clock(), start + 1e-3)
            new = self.signals(endpoint, new_id, start, end)
            old = self.signals(endpoint, old_id, start, end) if old_id else None
            return (old if old is None or old.requests else None), new

        return read


def _stamp(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)


def is_error(code: str) -> bool:
    return code.isdigit() and int(code) >= gates.ERROR_STATUS_MIN


def response_counts(series: Iterable[Any]) -> dict[str, int]:
    """Responses by response code over every point of ``series``."""
    counts: dict[str, int] = {}
    for one in series:
        code = str(one.metric.labels.get("response_code", ""))
        counts[code] = counts.get(code, 0) + sum(int(p.value.int64_value) for p in one.points)
    return counts


def p99_ms(series: list[Any]) -> float | None:
    """The 99th percentile (ms) of the latency distributions in ``series``: the
    ``model`` series when Vertex splits them by ``latency_type``, else all of them."""
    by_type = {str(s.metric.labels.get("latency_type", "")): s for s in series}
    chosen = next((by_type[t] for t in PREFERRED_LATENCY_TYPES if t in by_type), None)
    buckets: dict[float, float] = {}
    for one in [chosen] if chosen is not None else series:
        for point in one.points:
            for bound, count in cumulative(point.value.distribution_value).items():
                buckets[bound] = buckets.get(bound, 0.0) + count
    return gates.quantile_ms(buckets, 0.99)


def bucket_bounds(options: Any, count: int) -> list[float]:
    """The upper bounds (ms) of a distribution's ``count`` buckets: bucket 0 is the
    underflow, the last the overflow (``inf``), as Cloud Monitoring's BucketOptions say."""
    kind = options.WhichOneof("options")  # a google.api.Distribution.BucketOptions
    if kind == "linear_buckets":
        linear = options.linear_buckets
        finite = [linear.offset + linear.width * i for i in range(linear.num_finite_buckets + 1)]
    elif kind == "exponential_buckets":
        exp = options.exponential_buckets
        finite = [exp.scale * exp.growth_factor**i for i in range(exp.num_finite_buckets + 1)]
    elif kind == "explicit_buckets":
        finite = list(options.explicit_buckets.bounds)
    else:
        finite = []
    bounds = [*finite, math.inf]
    return bounds[:count] if count else bounds


def cumulative(distribution: Any) -> Mapping[float, float]:
    """A distribution's cumulative bucket counts keyed by upper bound in seconds (what
    ``quantile_ms`` takes); empty when the distribution has no buckets."""
    counts = [int(c) for c in distribution.bucket_counts]
    if not counts:
        return {}
    bounds = bucket_bounds(distribution.bucket_options, len(counts))
    total, result = 0.0, {}
    for bound, count in zip(bounds, counts, strict=False):
        total += count
        result[bound / 1000.0] = total
    if math.inf not in result:
        result[math.inf] = total  # trailing empty buckets may be left out
    return result
