"""Router metrics: plain counters on the hot path, Prometheus text on scrape.

Counting is an integer increment and a bisect into a bucket list (this module, which the
proxy imports); the Prometheus families are built only when ``/metrics`` is scraped, by
the collector in scrape.py, which reads the live backends. Metric names (all prefixed
``deployer_router_``):

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
