"""Live gates' core: the verdict on new against old, the watched bake, and signals read
from the model server's Prometheus histogram."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from deployer.providers.live import (
    Baker,
    LiveGateFailed,
    LiveRules,
    Signals,
    bake,
    compare,
    parse_metrics,
    quantile_ms,
)
from deployer.serving.metrics import REQUEST_SECONDS

RULES = LiveRules(max_error_rate_increase=0.01, max_p99_increase=0.5, min_requests=20)


def test_a_higher_error_rate_than_allowed_fails_naming_both_rates() -> None:
    verdict = compare(Signals(100, 1, 20.0), Signals(50, 3, 20.0), RULES)
    assert verdict.outcome == "fail"
    # old 1/100 = 1%, new 3/50 = 6%, allowed 1% + 1 point = 2%
    assert verdict.reason == (
        "error rate 6.00% on the new version against 1.00% on the old (allowed: up to 2.00%)"
    )


def test_an_error_rate_within_the_margin_passes() -> None:
    assert compare(Signals(100, 1, 20.0), Signals(50, 1, 20.0), RULES).outcome == "pass"


def test_a_slower_p99_than_allowed_fails() -> None:
    verdict = compare(Signals(100, 0, 40.0), Signals(100, 0, 61.0), RULES)
    assert verdict.outcome == "fail"
    assert verdict.reason == (
        "p99 latency 61.0 ms on the new version against 40.0 ms on the old (allowed: up to 60.0 ms)"
    )
    assert compare(Signals(100, 0, 40.0), Signals(100, 0, 59.0), RULES).outcome == "pass"


def test_a_tiny_p99_gets_the_minimum_margin_in_milliseconds() -> None:
    # 2 ms * 1.5 = 3 ms would fail a 6 ms p99; the 5 ms floor lets up to 7 ms through
    assert compare(Signals(100, 0, 2.0), Signals(100, 0, 6.0), RULES).outcome == "pass"
    assert compare(Signals(100, 0, 2.0), Signals(100, 0, 7.5), RULES).outcome == "fail"


def test_too_little_traffic_on_the_new_version_waits() -> None:
    verdict = compare(Signals(100, 0, 10.0), Signals(19, 19, 900.0), RULES)
    assert verdict.outcome == "wait"
    assert "19 request(s); 20 are needed" in verdict.reason


def test_with_no_old_traffic_the_new_is_held_to_the_margin_alone() -> None:
    assert compare(None, Signals(100, 1, 900.0), RULES).outcome == "pass"
    assert compare(None, Signals(100, 2, 9.0), RULES).outcome == "fail"


class VirtualTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_bake_compares_every_interval_and_stops_at_the_first_failure() -> None:
    time = VirtualTime()
    readings = iter(
        [
            (Signals(10, 0, 10.0), Signals(5, 0, 10.0)),  # too few: wait
            (Signals(40, 0, 10.0), Signals(30, 0, 11.0)),  # pass
            (Signals(80, 0, 10.0), Signals(60, 6, 11.0)),  # 10% errors: fail
            (Signals(99, 0, 10.0), Signals(99, 0, 10.0)),  # never read
        ]
    )
    baker = Baker(LiveRules(interval_seconds=10, min_requests=20), time.sleep, lambda: time.now)
    with pytest.raises(LiveGateFailed) as failed:
        baker.bake(60, lambda: next(readings))
    assert [v.outcome for v in baker.verdicts] == ["wait", "pass", "fail"]
    assert time.sleeps == [10, 10, 10]
    assert "error rate 10.00%" in str(failed.value)
    assert failed.value.verdict.new == Signals(60, 6, 11.0)


def test_a_good_bake_lasts_its_whole_time_and_returns_the_last_verdict() -> None:
    time = VirtualTime()
    good = (Signals(100, 0, 10.0), Signals(100, 0, 10.0))
    baker = Baker(LiveRules(interval_seconds=10), time.sleep, lambda: time.now)
    verdict = baker.bake(25, lambda: good)
    assert verdict is not None and verdict.outcome == "pass"
    assert time.sleeps == [10, 10, 5]


def test_require_traffic_fails_a_bake_that_never_saw_enough_requests() -> None:
    quiet = (None, Signals(3, 0, None))
    time = VirtualTime()
    relaxed = Baker(LiveRules(interval_seconds=10), time.sleep, lambda: time.now)
    verdict = relaxed.bake(20, lambda: quiet)
    assert verdict is not None and verdict.outcome == "wait"
    strict = Baker(
        LiveRules(interval_seconds=10, require_traffic=True), time.sleep, lambda: time.now
    )
    with pytest.raises(LiveGateFailed, match="require_traffic"):
        strict.bake(20, lambda: quiet)


def test_bake_without_rules_only_sleeps() -> None:
    time = VirtualTime()
    assert bake(30, lambda: (None, Signals(0, 0)), None, time.sleep) is None
    assert time.sleeps == [30]


def scrape(observations: list[tuple[str, int, float]]) -> str:
    """The /metrics text of a fresh registry holding the server's request histogram
    (same name, labels and buckets) after ``observations`` (route, status, seconds)."""
    registry = CollectorRegistry()
    histogram = Histogram(
        REQUEST_SECONDS._name,
        "test",
        ("route", "status"),
        buckets=REQUEST_SECONDS._kwargs["buckets"],
        registry=registry,
    )
    for route, status, seconds in observations:
        histogram.labels(route, str(status)).observe(seconds)
    return generate_latest(registry).decode()


def test_signals_from_metrics_count_5xx_and_leave_probes_out() -> None:
    text = scrape(
        [("/invocations", 200, 0.003)] * 90
        + [("/invocations", 500, 0.003)] * 5
        + [("/invocations", 400, 0.003)] * 5
        + [("/ping", 200, 0.001)] * 1000
    )
    signals = parse_metrics([text]).signals()
    assert (signals.requests, signals.errors) == (100, 5)


def test_signals_sum_pods_and_subtract_the_earlier_scrape() -> None:
    pod_a = [("/invocations", 200, 0.003)] * 10
    pod_b = [("/invocations", 503, 0.003)] * 4
    before = parse_metrics([scrape(pod_a), scrape(pod_b)])
    after = parse_metrics(
        [scrape(pod_a + [("/invocations", 200, 0.003)] * 30), scrape(pod_b + pod_b)]
    )
    assert after.minus(before).signals().requests == 34
    assert after.minus(before).signals().errors == 4
    # a pod that restarted counts from zero: its later scrape is all it served
    restarted = parse_metrics([scrape(pod_a + pod_a), scrape([("/invocations", 500, 0.003)])])
    assert restarted.minus(before).signals().errors == 1


def test_p99_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    # 100 requests: 98 at 3 ms (bucket 2.5-5 ms), 2 at 40 ms (bucket 25-50 ms).
    text = scrape([("/invocations", 200, 0.003)] * 98 + [("/invocations", 200, 0.04)] * 2)
    p99 = parse_metrics([text]).signals().p99_ms
    # rank 99 of 100 falls in the 25-50 ms bucket holding ranks 99-100: halfway
    assert p99 == pytest.approx(37.5)
    assert quantile_ms({}, 0.99) is None
    assert quantile_ms({0.01: 0.0, float("inf"): 0.0}, 0.99) is None
    assert quantile_ms({0.01: 0.0, float("inf"): 5.0}, 0.99) == pytest.approx(10.0)
