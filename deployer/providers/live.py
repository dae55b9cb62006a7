"""Live gates: while a canary or linear step bakes, compare the new version with the old
on what they really served (error rate, p99 latency) and stop the rollout when the new one
is worse by more than the rules allow.

The core owns the rules and the verdict; each provider reads its platform's signals (its
metric API, or the pods' ``/metrics``) and calls ``bake`` instead of sleeping through a
step's bake. ``bake`` raises ``LiveGateFailed`` with the reason; the provider then rolls
the step back as it does for any failed step and reports the reason.

Stdlib only (and ``prometheus_client``'s parser, lazily, for ``/metrics`` texts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ERROR_STATUS_MIN = 500  # a 5xx is the server's fault; a 4xx is the client's
REQUEST_METRIC = "deployer_request_duration_seconds"  # deployer.serving.metrics


@dataclass(frozen=True)
class Signals:
    """What one version served over a window: requests, 5xx answers, p99 latency."""

    requests: int
    errors: int
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def describe(self) -> str:
        p99 = "n/a" if self.p99_ms is None else f"{self.p99_ms:.1f} ms"
        return f"{self.requests} requests, error rate {self.error_rate:.2%}, p99 {p99}"


@dataclass(frozen=True)
class LiveRules:
    """How much worse the new version may be than the old before the rollout stops
    (``release.live`` in deployer.yaml)."""

    max_error_rate_increase: float = 0.01  # absolute: 0.01 = one point of error rate
    max_p99_increase: float = 0.5  # relative: 0.5 = the new p99 may be 1.5x the old
    min_p99_increase_ms: float = 5.0  # ... and always this much (tiny p99s are noisy)
    min_requests: int = 20  # fewer on the new version: no verdict yet
    interval_seconds: float = 10.0  # how often signals are compared while baking
    require_traffic: bool = False  # True: too little traffic by the end of a bake fails it


Outcome = Literal["pass", "fail", "wait"]


@dataclass(frozen=True)
class Verdict:
    """One comparison: pass, fail (with the reason), or wait (too little traffic)."""

    outcome: Outcome
    reason: str
    old: Signals | None = None
    new: Signals | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LiveGateFailed(Exception):
    """The new version is worse than the old on live signals: roll the step back."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


def compare(old: Signals | None, new: Signals, rules: LiveRules) -> Verdict:
    """The verdict on ``new`` against ``old`` (None: the old served nothing in the window,
    so the new is held to a zero error rate and no latency bound)."""
    if new.requests < rules.min_requests:
        return Verdict(
            "wait",
            f"the new version served {new.requests} request(s); "
            f"{rules.min_requests} are needed to compare",
            old,
            new,
        )
    baseline_rate = old.error_rate if old and old.requests else 0.0
    allowed_rate = baseline_rate + rules.max_error_rate_increase
    if new.error_rate > allowed_rate:
        return Verdict(
            "fail",
            f"error rate {new.error_rate:.2%} on the new version against "
            f"{baseline_rate:.2%} on the old (allowed: up to {allowed_rate:.2%})",
            old,
            new,
        )
    if old and old.p99_ms is not None and new.p99_ms is not None:
        allowed_ms = old.p99_ms + max(
            old.p99_ms * rules.max_p99_increase, rules.min_p99_increase_ms
        )
        if new.p99_ms > allowed_ms:
            return Verdict(
                "fail",
                f"p99 latency {new.p99_ms:.1f} ms on the new version against "
                f"{old.p99_ms:.1f} ms on the old (allowed: up to {allowed_ms:.1f} ms)",
                old,
                new,
            )
    return Verdict("pass", f"new: {new.describe()}; old: {_describe(old)}", old, new)


def _describe(signals: Signals | None) -> str:
    return "no traffic" if signals is None else signals.describe()


Reading = Callable[[], "tuple[Signals | None, Signals]"]  # (old, new) since the step began


@dataclass
class Baker:
    """Sleeps through a bake in steps, comparing the versions after each (injectable clock
    and sleep, so tests move virtual time)."""

    rules: LiveRules
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    verdicts: list[Verdict] = field(default_factory=list)

    def bake(self, seconds: float, read: Reading | None) -> Verdict | None:
        """Wait ``seconds``; with ``read``, compare every ``interval_seconds`` and raise
        LiveGateFailed on the first failing verdict. Returns the last verdict (None when
        nothing was read). Too little traffic at the end is not a failure unless
        ``require_traffic``: the last verdict says ``wait`` and the rollout goes on, as
        SageMaker's does when no alarm fires."""
        deadline = self.clock() + seconds
        last: Verdict | None = None
        while True:
            remaining = deadline - self.clock()
            if remaining > 0:
                self.sleep(min(remaining, self.rules.interval_seconds) if read else remaining)
            if read is not None:
                old, new = read()
                last = compare(old, new, self.rules)
                self.verdicts.append(last)
                if last.outcome == "fail":
                    raise LiveGateFailed(last)
            if self.clock() >= deadline:
                if last and last.outcome == "wait" and self.rules.require_traffic:
                    raise LiveGateFailed(
                        Verdict(
                            "fail",
                            f"{last.reason} (release.live.require_traffic)",
                            last.old,
                            last.new,
                        )
                    )
                return last


def bake(
    seconds: float, read: Reading | None, rules: LiveRules | None, sleep: Callable[[float], None]
) -> Verdict | None:
    """A bake of ``seconds``: plain sleep without rules, else a ``Baker``'s watched bake."""
    if rules is None or read is None:
        if seconds > 0:
            sleep(seconds)
        return None
    return Baker(rules, sleep=sleep).bake(seconds, read)


# --- signals from the model server's own /metrics (local target, Kubernetes pods) --------


@dataclass(frozen=True)
class Histogram:
    """The request histogram of one or more ``/metrics`` scrapes: per status, the count;
    over every status, the cumulative bucket counts by upper bound (seconds)."""

    counts: Mapping[str, float]
    buckets: Mapping[float, float]

    def minus(self, earlier: Histogram) -> Histogram:
        """What was served between ``earlier`` and this scrape (a restarted server counts
        from zero again: a negative difference means the later scrape holds all of it)."""
        counts = {s: _delta(v, earlier.counts.get(s, 0.0)) for s, v in self.counts.items()}
        buckets = {b: _delta(v, earlier.buckets.get(b, 0.0)) for b, v in self.buckets.items()}
        return Histogram(counts, buckets)

    def signals(self) -> Signals:
        requests = int(sum(self.counts.values()))
        errors = int(sum(v for s, v in self.counts.items() if _is_error(s)))
        return Signals(requests, errors, quantile_ms(self.buckets, 0.99))


def _delta(now: float, before: float) -> float:
    return now - before if now >= before else now


def _is_error(status: str) -> bool:
    return status.isdigit() and int(status) >= ERROR_STATUS_MIN


PROBE_ROUTES = frozenset({"/ping", "/health", "/healthz", "/ready", "/v2/health/ready",
                          "/v2/health/live", "/metrics"})  # fmt: skip


def parse_metrics(texts: Iterable[str]) -> Histogram:
    """The prediction requests' histogram summed over ``/metrics`` texts (one per pod or
    worker), health probes and the metrics route left out."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name != REQUEST_METRIC:
                continue
            for sample in family.samples:
                if sample.labels.get("route") in PROBE_ROUTES:
                    continue
                if sample.name.endswith("_count"):
                    status = sample.labels.get("status", "")
                    counts[status] = counts.get(status, 0.0) + sample.value
                elif sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return Histogram(counts, buckets)


def quantile_ms(buckets: Mapping[float, float], q: float) -> float | None:
    """The q-quantile in milliseconds of cumulative buckets, interpolated linearly inside
    the bucket as Prometheus's ``histogram_quantile`` does; None with no observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower * 1000.0  # the highest finite bound: all we can say
            inside = count - below
            fraction = (rank - below) / inside if inside > 0 else 1.0
            return (lower + (bound - lower) * fraction) * 1000.0
        lower, below = bound, count
    return lower * 1000.0
