"""Router metrics: plain counters on the hot path, Prometheus text on scrape.

Counting is an integer increment and a bisect into a bucket list; the Prometheus
families are built only when ``/metrics`` is scraped, by a collector that reads the live
backends. Metric names (all prefixed ``deployer_router_``):

per backend (label ``backend``; ``tier`` and ``provider`` on the info gauge):
  backend_requests_total                 attempts sent to the backend
  backend_responses_total{code}          answers by status code
  backend_errors_total{kind}             connect-failure, reset, timeout, protocol, 5xx, 429
  backend_latency_seconds                histogram of attempt latency (answers only)
  backend_ejections_total                passive ejections
  backend_healthy                        1 when the backend takes traffic
  backend_inflight                       attempts in flight
  backend_latency_ewma_seconds           the moving average least-latency uses
  backend_info{provider,tier,weight}     1
router:
  requests_total{code}                   client requests by the status returned
  request_duration_seconds               histogram, retries included
  retries_total, retry_budget_exhausted_total, no_backend_total
  reloads_total{result}                  manifest reloads (ok, failed)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployer_router.proxy import Upstream

BUCKETS = (
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
    30.0,
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Bucket counts (non-cumulative) and the sum of observations."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        total = 0
        out = []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


class BackendStats:
    """Counters of one backend (survive reloads that keep the backend)."""

    __slots__ = ("errors", "latency", "requests", "responses")

    def __init__(self) -> None:
        self.requests = 0
        self.responses: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.latency = Histogram()

    def answered(self, status: int, seconds: float) -> None:
        responses = self.responses
        responses[status] = responses.get(status, 0) + 1
        latency = self.latency
        latency.counts[bisect_left(BUCKETS, seconds)] += 1
        latency.sum += seconds

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class RouterStats:
    """Client-facing counters of the router."""

    __slots__ = ("budget_exhausted", "duration", "no_backend", "reloads", "requests", "retries")

    def __init__(self) -> None:
        self.requests: dict[int, int] = {}
        self.duration = Histogram()
        self.retries = 0
        self.budget_exhausted = 0
        self.no_backend = 0
        self.reloads = {"ok": 0, "failed": 0}

    def finished(self, status: int, seconds: float) -> None:
        requests = self.requests
        requests[status] = requests.get(status, 0) + 1
        duration = self.duration
        duration.counts[bisect_left(BUCKETS, seconds)] += 1
        duration.sum += seconds


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
