"""Live gates on Azure ML: while a canary bakes, the new deployment is compared with the
old on Azure Monitor's metrics (read with azure-monitor-query's MetricsQueryClient from
the fake, which counts what its scoring URI really served).

The bake runs in virtual time: each of its sleeps sends real requests through the
endpoint's scoring URI to both deployments, as clients would during the bake.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from azure_fake import FakeAzureML, StubRuntime
from azure_support import image_ref, release

from deployer.providers import Strategy
from deployer.providers.live import LiveRules
from deployer_azure import names, promote

EP = "iris-azure"
BODY = b"[[5.1, 3.5, 1.4, 0.2]]"


def name_of(number: int) -> str:
    return names.deployment_name(release(number).version)


EPOCH = 1_800_000_000  # a whole minute (2027-01-15 08:00 UTC): the bakes' virtual time


class VirtualBake:
    """The bake's clock and sleep, and the wall clock the metrics are kept and read by:
    a sleep moves virtual time and, halfway, sends ``per_sleep`` requests to each of
    ``deployments`` through the scoring URI."""

    def __init__(self, provider: Any, deployments: list[str], per_sleep: int) -> None:
        self.provider, self.deployments, self.per_sleep = provider, deployments, per_sleep
        self.now = 0.0
        self.sleeps: list[float] = []

    def install(self, fake: FakeAzureML, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(promote, "bake_sleep", self.sleep)
        monkeypatch.setattr(promote, "bake_clock", self.clock)
        monkeypatch.setattr(promote, "bake_now", self.wall)
        monkeypatch.setattr(fake.metrics, "clock", lambda: EPOCH + self.now)

    def clock(self) -> float:
        return self.now

    def wall(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(EPOCH + self.now, dt.timezone.utc)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds / 2
        for _ in range(self.per_sleep):
            for name in self.deployments:
                self.provider.invoke(BODY, "application/json", deployment=name)
        self.now += seconds / 2


@pytest.fixture
def lines() -> list[str]:
    return []


def canary(
    provider: Any,
    fake: FakeAzureML,
    monkeypatch: pytest.MonkeyPatch,
    lines: list[str],
    rules: LiveRules,
    per_sleep: int = 12,
) -> Any:
    """v1 live, then v2 as a 50% canary baking 60 (virtual) seconds under ``rules``."""
    baking = VirtualBake(provider, [name_of(1), name_of(2)], per_sleep)
    baking.install(fake, monkeypatch)
    provider.wait(provider.deploy(release(1), image_ref(fake, 1), Strategy(), lines.append),
                  120, lines.append)  # fmt: skip
    strategy = Strategy("canary", 50, bake_seconds=60, live=rules)
    deployment = provider.deploy(release(2), image_ref(fake, 2), strategy, lines.append)
    return provider.wait(deployment, 120, lines.append)


RULES = LiveRules(
    min_requests=10,
    interval_seconds=30,
    max_error_rate_increase=0.05,
    min_p99_increase_ms=60.0,
)


def test_a_good_canary_is_promoted_after_passing_verdicts(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    status = canary(make_provider(), fake, monkeypatch, lines, RULES)
    assert status.healthy, status.reason
    assert status.version == release(2).version
    assert fake.traffic_updates(EP)[-2:] == [
        {name_of(2): 50, name_of(1): 50},
        {name_of(2): 100},
    ]
    verdicts = [line for line in lines if line.startswith("live gate:")]
    assert len(verdicts) == 2 and all(v.startswith("live gate: pass (") for v in verdicts)
    first, second = (int(re.search(r"new: (\d+) requests", v)[1]) for v in verdicts)  # type: ignore[index]
    # counted from the step's minute (Azure's grain), which holds the smoke call too
    assert (first, second) == (13, 25)
    # both metrics were read through the real client, as Azure Monitor is asked
    filters = [q["$filter"] for q in fake.metrics.queries]
    assert f"deployment eq '{name_of(2)}' or deployment eq '{name_of(1)}'" in filters
    assert {q["metricnames"] for q in fake.metrics.queries} == {
        "RequestsPerMinute",
        "RequestLatency_P99",
    }
    assert {q["api-version"] for q in fake.metrics.queries} == {fake.metrics.api_version}
    assert not fake.metrics.refused


def test_a_canary_answering_500_is_rolled_back_with_the_reason(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    provider = make_provider()
    assert isinstance(fake.runtime, StubRuntime)
    fake.runtime.fail_after[name_of(2)] = 1  # passes the smoke call, then answers 500
    status = canary(provider, fake, monkeypatch, lines, RULES)
    assert status.state == "failed" and not status.healthy
    reason = status.reason or ""
    # 12 answers of 500 and the good smoke call, in the step's minute (Azure's grain)
    assert reason.startswith(
        "live gate: error rate 92.31% on the new version against 0.00% on the old "
        f"(allowed: up to 5.00%); rolled back: {release(1).version} ({name_of(1)}) keeps serving"
    ), reason
    assert f"deployment {name_of(2)} deleted" in reason
    assert status.version == release(1).version
    assert status.details["rolled_back"] is True
    gate = status.details["live_gate"]
    assert gate["outcome"] == "fail"
    assert gate["new"]["errors"] == 12 and gate["new"]["requests"] == 13
    assert gate["old"]["requests"] >= 12 and gate["old"]["errors"] == 0
    # the first verdict failed: the bake stopped there, traffic went back at once
    verdicts = [line for line in lines if line.startswith("live gate:")]
    assert len(verdicts) == 1 and verdicts[0].startswith("live gate: fail (error rate ")
    assert fake.traffic_updates(EP)[-2:] == [
        {name_of(2): 50, name_of(1): 50},
        {name_of(1): 100},
    ]
    assert (EP, name_of(2)) not in fake.deployments
    assert provider.status().version == release(1).version


def test_a_slower_canary_is_rolled_back_naming_both_p99s(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    provider = make_provider()
    assert isinstance(fake.runtime, StubRuntime)
    fake.runtime.slow[name_of(2)] = 0.3  # every answer of the canary takes 300 ms
    status = canary(provider, fake, monkeypatch, lines, RULES, per_sleep=10)
    assert status.state == "failed"
    reason = status.reason or ""
    assert reason.startswith("live gate: p99 latency "), reason
    assert "ms on the new version against" in reason and "(allowed: up to" in reason
    gate = status.details["live_gate"]
    assert gate["new"]["p99_ms"] >= 300.0
    assert gate["new"]["p99_ms"] > gate["old"]["p99_ms"] + 60.0
    assert fake.traffic_updates(EP)[-1] == {name_of(1): 100}
    assert provider.status().version == release(1).version


def test_too_little_traffic_goes_on_and_fails_when_traffic_is_required(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    status = canary(make_provider(), fake, monkeypatch, lines, RULES, per_sleep=2)
    assert status.healthy, status.reason  # no verdict yet: the rollout goes on
    waits = [line for line in lines if line.startswith("live gate: wait")]
    assert len(waits) == 2
    assert re.match(r"live gate: wait \(the new version served 5 ", waits[-1]), waits

    required = LiveRules(min_requests=10, interval_seconds=30, require_traffic=True)
    other = make_provider(target="quiet")
    lines.clear()
    status = canary(other, fake, monkeypatch, lines, required, per_sleep=2)
    assert status.state == "failed"
    assert re.match(
        r"live gate: the new version served 5 request\(s\); 10 are needed to compare "
        r"\(release\.live\.require_traffic\); rolled back:",
        status.reason or "",
    ), status.reason
    assert fake.traffic_updates("iris-quiet")[-1] == {name_of(1): 100}


def test_without_live_rules_the_bake_reads_no_metrics(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    provider = make_provider()
    provider.wait(provider.deploy(release(1), image_ref(fake, 1), Strategy(), lines.append),
                  120, lines.append)  # fmt: skip
    slept: list[float] = []
    monkeypatch.setattr(promote, "bake_sleep", slept.append)
    deployment = provider.deploy(
        release(2), image_ref(fake, 2), Strategy("canary", 10, bake_seconds=30), lines.append
    )
    assert provider.wait(deployment, 120, lines.append).healthy
    assert slept == [30]
    assert not fake.requests_to("GET", "/providers/Microsoft.Insights/metrics")


def test_the_fake_refuses_what_azure_monitor_refuses(fake: FakeAzureML, credential: Any) -> None:
    """Through the real client: a dimension the metric lacks, an unknown metric."""
    from azure.core.exceptions import HttpResponseError
    from azure.monitor.query import MetricsQueryClient

    fake.endpoints[EP] = {"properties": {}}
    client = MetricsQueryClient(credential, endpoint=fake.url)
    resource = fake._endpoint_id(EP)
    end = dt.datetime.now(dt.timezone.utc)
    span = (end - dt.timedelta(minutes=5), end)
    with pytest.raises(HttpResponseError, match="does not support requested dimension"):
        client.query_resource(
            resource, ["RequestLatency_P99"], timespan=span, filter="statusCodeClass eq '*'"
        )
    with pytest.raises(HttpResponseError, match="Failed to find metric configuration"):
        client.query_resource(resource, ["RequestsPerSecond"], timespan=span)
    with pytest.raises(HttpResponseError, match="cannot separate two different"):
        client.query_resource(
            resource,
            ["RequestsPerMinute"],
            timespan=span,
            filter="deployment eq 'a' or statusCodeClass eq '5xx'",
        )
    result = client.query_resource(
        resource, ["RequestsPerMinute"], timespan=span, aggregations=["Total"]
    )
    assert [m.name for m in result.metrics] == ["RequestsPerMinute"]
    assert len(fake.metrics.refused) == 3


def test_metrics_it_may_not_read_stop_the_canary_and_say_why(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    provider = make_provider()
    fake.forbid("GET", "/providers/Microsoft.Insights/metrics", "Microsoft.Insights/metrics/read")
    status = canary(provider, fake, monkeypatch, lines, RULES)
    assert status.state == "failed"
    reason = status.reason or ""
    assert "live gate: the signals could not be read: permission denied" in reason
    assert "Microsoft.Insights/metrics/read" in reason
    assert f"rolled back: traffic 100% to {name_of(1)}" in reason
    assert fake.traffic_updates(EP)[-1] == {name_of(1): 100}
    assert provider.status().version == release(1).version


def test_each_linear_step_is_judged_on_its_own_window(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    """linear:25 bakes at 25% and 50%: the first step passes; the model breaks in the
    second, whose window holds only its own requests, and that step is rolled back."""
    provider = make_provider()
    VirtualBake(provider, [name_of(1), name_of(2)], 12).install(fake, monkeypatch)
    provider.wait(provider.deploy(release(1), image_ref(fake, 1), Strategy(), lines.append),
                  120, lines.append)  # fmt: skip
    assert isinstance(fake.runtime, StubRuntime)
    # good for the smoke call, the first step's two reads and the check after its bake
    fake.runtime.fail_after[name_of(2)] = 1 + 24 + 1
    strategy = Strategy("linear", 25, bake_seconds=60, live=RULES)
    deployment = provider.deploy(release(2), image_ref(fake, 2), strategy, lines.append)
    status = provider.wait(deployment, 120, lines.append)
    assert status.state == "failed"
    verdicts = [line for line in lines if line.startswith("live gate:")]
    assert [v.split(" (")[0] for v in verdicts] == ["live gate: pass"] * 2 + ["live gate: fail"]
    # the failing window counts the second step's requests only (12 per read), not the
    # first step's 24 good ones: an error rate near 100%, not near a third
    assert status.details["live_gate"]["new"]["errors"] == 12
    assert status.details["live_gate"]["new"]["requests"] == 13  # and the check's call
    assert fake.traffic_updates(EP)[-3:] == [
        {name_of(2): 25, name_of(1): 75},
        {name_of(2): 50, name_of(1): 50},
        {name_of(1): 100},
    ]
