"""``/metrics`` on scrape: a prometheus_client collector that reads the router's counters
(metrics.py) and its live backends (proxy.Upstream), and their Prometheus text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from deployer_router.metrics import RouterStats
from deployer_router.proxy import Upstream

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Collector:
    """A prometheus_client collector over the router's live state."""

    def __init__(self, stats: RouterStats, upstreams: Any) -> None:
        self.stats = stats
        self.upstreams = upstreams  # () -> Iterable[Upstream]; the current manifest's

    def collect(self) -> Iterator[Any]:
        import time

        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        p = "deployer_router_"
        now = time.monotonic()
        ups: Iterable[Upstream] = list(self.upstreams())
        req = CounterMetricFamily(p + "backend_requests", "Attempts sent", labels=["backend"])
        res = CounterMetricFamily(p + "backend_responses", "Answers", labels=["backend", "code"])
        err = CounterMetricFamily(
            p + "backend_errors", "Failed attempts", labels=["backend", "kind"]
        )
        ej = CounterMetricFamily(p + "backend_ejections", "Passive ejections", labels=["backend"])
        lat = HistogramMetricFamily(
            p + "backend_latency_seconds", "Attempt latency", labels=["backend"]
        )
        healthy = GaugeMetricFamily(p + "backend_healthy", "Takes traffic", labels=["backend"])
        inflight = GaugeMetricFamily(p + "backend_inflight", "In flight", labels=["backend"])
        ewma = GaugeMetricFamily(
            p + "backend_latency_ewma_seconds", "Latency moving average", labels=["backend"]
        )
        info = GaugeMetricFamily(
            p + "backend_info", "Backend settings", labels=["backend", "provider", "tier", "weight"]
        )
        for up in ups:
            name = up.name
            s = up.stats
            req.add_metric([name], s.requests)
            for code, count in sorted(s.responses.items()):
                res.add_metric([name, str(code)], count)
            for kind, count in sorted(s.errors.items()):
                err.add_metric([name, kind], count)
            ej.add_metric([name], up.state.ejections_total)
            lat.add_metric([name], s.latency.cumulative(), s.latency.sum)
            healthy.add_metric([name], 1.0 if up.state.available(now) else 0.0)
            inflight.add_metric([name], up.inflight)
            ewma.add_metric([name], up.ewma)
            info.add_metric([name, up.config.provider, str(up.tier), str(up.weight)], 1.0)
        yield from (req, res, err, ej, lat, healthy, inflight, ewma, info)

        st = self.stats
        total = CounterMetricFamily(p + "requests", "Client requests", labels=["code"])
        for code, count in sorted(st.requests.items()):
            total.add_metric([str(code)], count)
        yield total
        duration = HistogramMetricFamily(p + "request_duration_seconds", "Client request time")
        duration.add_metric([], st.duration.cumulative(), st.duration.sum)
        yield duration
        yield CounterMetricFamily(p + "retries", "Retries sent", value=st.retries)
        yield CounterMetricFamily(
            p + "retry_budget_exhausted", "Retries refused by the budget", value=st.budget_exhausted
        )
        yield CounterMetricFamily(
            p + "no_backend", "Requests with no available backend", value=st.no_backend
        )
        reloads = CounterMetricFamily(p + "reloads", "Manifest reloads", labels=["result"])
        for result, count in st.reloads.items():
            reloads.add_metric([result], count)
        yield reloads


def exposition(collector: Collector) -> bytes:
    """The Prometheus text format of everything ``collector`` reports."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
