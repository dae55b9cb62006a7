"""Prometheus metrics: request latency per route and status, model load time, batch sizes.

With several worker processes, PROMETHEUS_MULTIPROC_DIR is set by the launcher and
/metrics aggregates every worker's samples.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

REQUEST_SECONDS = Histogram(
    "deployer_request_duration_seconds",
    "Time to answer a request, by route and status code.",
    ("route", "status"),
    buckets=_LATENCY_BUCKETS,
)
MODEL_LOAD_SECONDS = Gauge(
    "deployer_model_load_seconds", "Time it took to load the model.", multiprocess_mode="max"
)
MODEL_READY = Gauge("deployer_model_ready", "1 once the model is loaded.", multiprocess_mode="min")
BATCH_SIZE = Histogram(
    "deployer_batch_requests",
    "Requests served by one predict call (micro-batching).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class RequestMetrics:
    """Caches labelled histogram children so the hot path does one dict lookup."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, int], object] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        child = self._children.get((route, status))
        if child is None:
            child = REQUEST_SECONDS.labels(route, str(status))
            self._children[(route, status)] = child
        child.observe(seconds)  # type: ignore[attr-defined]


def render(extra: Sequence[Collector] = ()) -> bytes:
    """The Prometheus text exposition of every metric (all workers when multiprocess),
    then those of ``extra`` collectors (this process's own, e.g. the drift gauges)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest()
    if extra:
        own = CollectorRegistry(auto_describe=False)
        for collector in extra:
            own.register(collector)
        text += generate_latest(own)
    return text
