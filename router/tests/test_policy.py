"""Balancing, the retry budget and the health state machine, without sockets."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from deployer.router.manifest import PassiveHealth
from deployer_router.health import HealthState
from deployer_router.policy import Balancer, latency_estimate, observe_latency
from deployer_router.retry import RetryBudget, status_retryable


@dataclass(eq=False)
class B:
    name: str
    weight: int = 1
    tier: int = 0
    up: bool = True
    current: float = 0.0
    ewma: float = 0.0
    ewma_at: float = 0.0
    inflight: int = 0
    picks: list[float] = field(default_factory=list)

    def available(self, now: float) -> bool:
        return self.up


def test_smooth_weighted_round_robin_is_exact_and_interleaved() -> None:
    a, b, c = B("a", 5), B("b", 1), B("c", 1)
    balancer = Balancer([a, b, c], "weighted")
    order = [balancer.pick(0.0).name for _ in range(7)]  # type: ignore[union-attr]
    assert Counter(order) == {"a": 5, "b": 1, "c": 1}
    assert order == ["a", "a", "b", "a", "c", "a", "a"]  # not aaaaabc
    counts = Counter(balancer.pick(0.0).name for _ in range(7000))  # type: ignore[union-attr]
    assert counts == {"a": 5000, "b": 1000, "c": 1000}


def test_tiers_fail_over_and_back_and_retries_fall_through() -> None:
    primary, second, backup = B("p", tier=0), B("s", tier=0), B("b", tier=3)
    balancer = Balancer([backup, primary, second], "weighted")
    assert {balancer.pick(0.0).name for _ in range(10)} == {"p", "s"}  # type: ignore[union-attr]
    assert balancer.pick(0.0, [primary, second]) is backup  # a retry may go down a tier
    primary.up = second.up = False
    assert balancer.pick(0.0) is backup
    assert balancer.pick(0.0, [backup]) is None
    second.up = True
    assert balancer.pick(0.0) is second  # failback as soon as one is up


def test_weight_zero_and_exclusion() -> None:
    a, b = B("a", 0), B("b", 2)
    balancer = Balancer([a, b], "weighted")
    assert {balancer.pick(0.0).name for _ in range(5)} == {"b"}  # type: ignore[union-attr]


def test_least_latency_measures_prefers_and_probes() -> None:
    fast, slow = B("fast"), B("slow")
    balancer = Balancer([slow, fast], "least-latency")
    first, second = balancer.pick(0.0), None
    assert first is slow  # unmeasured goes first
    observe_latency(slow, 0.050, 0.0)
    second = balancer.pick(0.0)
    assert second is fast
    observe_latency(fast, 0.002, 0.0)
    assert [balancer.pick(0.5).name for _ in range(5)] == ["fast"] * 5  # type: ignore[union-attr]
    fast.inflight = 30  # queueing at the fast one makes the slow one worth it
    assert balancer.pick(0.5) is slow
    fast.inflight = 0
    fast.ewma_at = 2.9
    assert balancer.pick(3.0) is slow  # not chosen for 2 s: probed once
    assert balancer.pick(3.0) is fast
    assert latency_estimate(slow, 100.0) < slow.ewma  # an old average decays


def test_retry_budget_allows_percent_plus_floor_over_the_window() -> None:
    budget = RetryBudget(percent=20, min_per_second=1, window=10)
    for i in range(100):
        budget.record_request(1000 + i * 0.01)
    allowed = sum(budget.try_retry(1001.0) for _ in range(100))
    assert allowed == 20 + 10  # 20% of 100 requests + 1/s over 10 s
    assert budget.remaining(1001.0) == 0
    # ten seconds later the window has moved on: the old requests and retries are gone
    budget.record_request(1012.0)
    assert budget.requests == 1 and budget.retries == 0
    assert budget.try_retry(1012.0)


def test_what_is_retried() -> None:
    default = frozenset({"connect-failure", "reset", "timeout", "429", "5xx"})
    assert status_retryable(503, default) and status_retryable(429, default)
    assert not status_retryable(404, default) and not status_retryable(400, default)
    assert status_retryable(502, frozenset({"502"})) and not status_retryable(
        500, frozenset({"502"})
    )


def test_passive_ejection_doubles_and_probation_reejects() -> None:
    state = HealthState(1, PassiveHealth(consecutive_failures=3, base_ejection=5, max_ejection=12))
    assert not state.record_failure(0.0) and not state.record_failure(0.1)
    assert state.record_failure(0.2)  # third in a row
    assert not state.available(1.0) and "ejected for" in state.reason(1.0)
    assert state.available(5.3)  # back on probation
    assert state.record_failure(5.3)  # one failure ejects again, for twice as long
    assert not state.available(14.0) and state.available(15.4)
    assert state.record_failure(15.4)
    assert state.ejected_until == 15.4 + 12  # capped
    state.record_success()
    assert state.ejections == 0 and state.consecutive_failures == 0


def test_active_checks_gate_readmission_and_thresholds() -> None:
    state = HealthState(1, PassiveHealth(consecutive_failures=1, base_ejection=1))
    state.set_check("active", True)
    assert state.record_failure(0.0)
    assert not state.available(2.0)  # the ejection is over but no check has passed since
    assert state.reason(2.0) == "ejected; waiting for a passing health check"
    state.set_check("active", True, threshold=(2, 2))
    assert not state.available(2.0)
    state.set_check("active", True, threshold=(2, 2))
    assert state.available(2.0)
    state.set_check("active", False, "GET /ping answered 503", threshold=(2, 2))
    assert state.available(2.0)  # one failure is below the unhealthy threshold
    state.set_check("active", False, "GET /ping answered 503", threshold=(2, 2))
    assert not state.available(2.0)
    assert state.reason(2.0) == "active check failing: GET /ping answered 503"
    state.set_credentials(False, "expired")
    assert state.reason(2.0) == "credentials not ready: expired"
