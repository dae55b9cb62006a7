"""The old and the new deployment's live signals from Azure Monitor (``release.live``).

An Azure ML online endpoint reports, per deployment, in Azure Monitor (the endpoint's
metrics, Microsoft.MachineLearningServices/workspaces/onlineEndpoints, PT1M grain):

- ``RequestsPerMinute`` (Count), split by ``deployment`` and ``statusCodeClass``: read
  with the ``Total`` aggregation and summed over the window; ``5xx`` answers are errors;
- ``RequestLatency_P99`` (Milliseconds, aggregation ``Average``), split by
  ``deployment``: the largest minute of the window is the window's p99 (a conservative
  reading: Azure gives one p99 per minute, not the histogram to merge them).

Read with azure-monitor-query's ``MetricsQueryClient`` against the workspace's ARM
endpoint, with the same credential and retries as every other call. The window starts at
the minute the step began (the metrics' grain) and ends now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from deployer.providers import MissingDependencyError, live
from deployer_azure import client
from deployer_azure.auth import azure_errors
from deployer_azure.workspace import Workspace

REQUESTS = "RequestsPerMinute"
LATENCY = "RequestLatency_P99"
GRAIN = dt.timedelta(minutes=1)
MAX_SERIES = 50  # deployments x status classes; the service's default "top" is 10


def metrics_client(ws: Workspace) -> Any:
    """A MetricsQueryClient for the workspace's cloud (its ARM endpoint)."""
    try:
        from azure.monitor.query import MetricsQueryClient
    except ImportError:
        raise MissingDependencyError(
            "live gates on Azure ML read Azure Monitor with azure-monitor-query, "
            "which is not installed",
            hint="pip install 'azure-monitor-query>=1.2,<2' (a dependency of deployer-azure)",
        ) from None

    return MetricsQueryClient(
        ws.credential,
        endpoint=client.resource_manager_url(ws.options),
        **client.retry_kwargs(ws.options),
    )


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class SignalReader:
    """``read()`` -> (old, new) live.Signals since ``start`` (see the module docstring)."""

    def __init__(
        self,
        ws: Workspace,
        new: str,
        old: str | None,
        now: Callable[[], dt.datetime] = utc_now,
        query: Any = None,
    ) -> None:
        self.ws, self.new, self.old, self.now = ws, new, old, now
        started = now()
        self.start = started.replace(second=0, microsecond=0)  # the grain's minute
        self._client = query

    def read(self) -> tuple[live.Signals | None, live.Signals]:
        end = max(self.now(), self.start + dt.timedelta(seconds=1))
        names = [n for n in (self.new, self.old) if n]
        with azure_errors(f"reading Azure Monitor metrics of endpoint {self.ws.endpoint}",
                          self.ws.scope):  # fmt: skip
            counts = self._requests(names, end)
            p99 = self._latency(names, end)
        new = _signals(counts.get(self.new), p99.get(self.new))
        old_counts = counts.get(self.old) if self.old else None
        old = _signals(old_counts, p99.get(self.old or "")) if old_counts else None
        return old, new

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = metrics_client(self.ws)
        return self._client

    def _query(self, metric: str, end: dt.datetime, aggregation: str, filter: str) -> Any:
        return self.client.query_resource(
            self.ws.scope,
            [metric],
            timespan=(self.start, end),
            granularity=GRAIN,
            aggregations=[aggregation],
            filter=filter,
            max_results=MAX_SERIES,
        )

    def _requests(self, names: list[str], end: dt.datetime) -> dict[str, tuple[float, float]]:
        """deployment -> (requests, 5xx answers)."""
        filter = f"{_any_of('deployment', names)} and statusCodeClass eq '*'"
        result = self._query(REQUESTS, end, "Total", filter)
        counts: dict[str, tuple[float, float]] = {}
        for series in _series(result, REQUESTS):
            name = series.metadata_values.get("deployment", "")
            total = sum(point.total or 0.0 for point in series.data)
            errors = (
                total
                if str(series.metadata_values.get("statusCodeClass", "")).startswith("5")
                else 0.0
            )
            before = counts.get(name, (0.0, 0.0))
            counts[name] = (before[0] + total, before[1] + errors)
        return counts

    def _latency(self, names: list[str], end: dt.datetime) -> dict[str, float]:
        """deployment -> the largest minute's p99 (ms) in the window."""
        result = self._query(LATENCY, end, "Average", _any_of("deployment", names))
        worst: dict[str, float] = {}
        for series in _series(result, LATENCY):
            name = series.metadata_values.get("deployment", "")
            values = [p.average for p in series.data if p.average is not None]
            if values:
                worst[name] = max(worst.get(name, 0.0), max(values))
        return worst


def _any_of(dimension: str, values: list[str]) -> str:
    return " or ".join(f"{dimension} eq '{value}'" for value in values)


def _series(result: Any, metric: str) -> list[Any]:
    return [s for m in result.metrics if m.name == metric for s in m.timeseries]


def _signals(counts: tuple[float, float] | None, p99: float | None) -> live.Signals:
    requests, errors = counts or (0.0, 0.0)
    return live.Signals(round(requests), round(errors), p99)
