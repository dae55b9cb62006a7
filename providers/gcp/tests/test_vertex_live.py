"""Live gates on Vertex AI: while a canary bakes, Cloud Monitoring's response counts and
latencies of the new deployed model are compared with the old one's (the official
google-cloud-monitoring client against the fake's ListTimeSeries, at the wire).

The bake runs in virtual time: the scope's sleep advances a virtual clock and sends
predictions through the endpoint, which the fake Vertex routes by the traffic split and
records in Cloud Monitoring, like Vertex does.
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.api import distribution_pb2
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.cloud import monitoring_v3
from monitoring_fake import LATENCIES, RESPONSE_COUNT, distribution
from vertex_fake import FakeVertex
from vertex_support import TOKEN, FakeCredentials, provider, push, release

from deployer.providers import Strategy
from deployer.providers.live import LiveRules
from deployer_gcp import monitoring
from deployer_gcp.provider import VertexProvider

RULES = LiveRules(min_requests=10, interval_seconds=10.0)


def weighted_round_robin() -> Any:
    """A deterministic chooser (smooth weighted round robin): each deployed model gets
    exactly its share, interleaved, so the tests' counts do not depend on luck."""
    current: dict[str, int] = {}

    def choose(split: dict[str, int]) -> str:
        for key, weight in split.items():
            current[key] = current.get(key, 0) + weight
        pick = max(sorted(split), key=lambda k: current[k])
        current[pick] -= sum(split.values())
        return pick

    return choose


@dataclass
class Traffic:
    """The bake's virtual clock; each sleep sends ``per_sleep`` predictions."""

    vertex_provider: VertexProvider
    endpoint: str
    per_sleep: int = 100
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for _ in range(self.per_sleep):
            # a broken version's 500 is recorded by the fake, as Vertex records it
            with contextlib.suppress(gexc.GoogleAPICallError):
                self.vertex_provider.api.predict(self.endpoint, [[0, 0, 0, 0]])


def canary(
    vertex: FakeVertex,
    rules: LiveRules = RULES,
    per_sleep: int = 100,
    bake: float = 30.0,
    kind: str = "canary",
) -> tuple[Any, Any, list[str], Traffic]:
    """Release 1 live, then release 2 as a 25% canary (or ``linear``) baking ``bake``
    virtual seconds under ``rules``; returns (deployment, status, progress, traffic)."""
    vertex.chooser = weighted_round_robin()
    p = provider(vertex.address, monitoring_endpoint=vertex.address)
    push(p, release(1))
    traffic = Traffic(p, vertex.endpoint().name, per_sleep)
    p.scope.sleep, p.scope.clock = traffic.sleep, traffic.clock
    notes: list[str] = []
    strategy = Strategy(kind, 25, bake_seconds=bake, live=rules)  # type: ignore[arg-type]
    image = f"127.0.0.1:1/unused/iris-test@sha256:{'0' * 64}"
    deployment = p.deploy(release(2), image, strategy, notes.append)
    status = p.wait(deployment, 120.0, notes.append)
    return deployment, status, notes, traffic


V1, V2 = release(1).version, release(2).version


def test_a_canary_answering_500_is_rolled_back_with_the_reason(
    vertex: FakeVertex, adc: Any
) -> None:
    vertex.broken.add(V2)
    _, status, notes, traffic = canary(vertex)

    assert status.state == "failed"
    assert status.reason.startswith("live gate: error rate 100.00% on the new version")
    assert status.reason.endswith(f"; rolled back: {V1} keeps serving")
    assert status.details["rolled_back"] is True
    gate = status.details["live_gate"]
    assert gate["outcome"] == "fail"
    assert gate["new"]["errors"] == gate["new"]["requests"] == 25
    assert gate["old"] == {"requests": 75, "errors": 0, "p99_ms": pytest.approx(20.0, rel=0.25)}
    assert vertex.traffic() == {V1: 100}
    assert status.version == V1
    assert traffic.sleeps == [10.0]  # stopped at the first comparison, not after the bake
    assert any(n.startswith("live gate: fail (error rate") for n in notes)


def test_a_slower_canary_is_rolled_back_naming_both_p99s(vertex: FakeVertex, adc: Any) -> None:
    vertex.latency_ms[V2] = 300.0
    _, status, _, _ = canary(vertex)

    assert status.state == "failed"
    assert status.reason.startswith("live gate: p99 latency ")
    assert "on the new version against" in status.reason
    gate = status.details["live_gate"]
    assert gate["new"]["p99_ms"] > 250 and gate["old"]["p99_ms"] < 30
    assert vertex.traffic() == {V1: 100}
    assert [dm.display_name for dm in vertex.endpoint().deployed_models] == [V1]


def test_a_good_canary_is_promoted_after_passing_comparisons(vertex: FakeVertex, adc: Any) -> None:
    _, status, notes, traffic = canary(vertex)

    assert status.state == "healthy", status.reason
    assert status.version == V2
    assert vertex.traffic() == {V2: 100}
    passes = [n for n in notes if n.startswith("live gate: pass (")]
    assert len(passes) == 3 and traffic.sleeps == [10.0, 10.0, 10.0]
    assert "new: 25 requests" in passes[0] and "old: 75 requests" in passes[0]
    assert "new: 75 requests" in passes[-1]  # counted from the start of the step


def test_the_requests_name_each_deployed_model_and_the_step_window(
    vertex: FakeVertex, adc: Any
) -> None:
    deployment, _, _, _ = canary(vertex)
    endpoint = vertex.endpoint().name
    sent = vertex.requests("ListTimeSeries")
    assert len(sent) == 3 * 4  # three comparisons: two metrics for each deployed model
    old_id = deployment.details["previous_deployed_model"]
    ids = {r.filter.rsplit('deployed_model_id = "', 1)[1].rstrip('"') for r in sent}
    assert old_id in ids and len(ids) == 2
    assert {r.name for r in sent} == {"projects/demo-project"}
    endpoint_id = endpoint.split("/")[-1]
    assert all(f'resource.labels.endpoint_id = "{endpoint_id}"' in r.filter for r in sent)
    assert {r.filter.split('"')[1] for r in sent} == {RESPONSE_COUNT, LATENCIES}
    starts = {r.interval.start_time for r in sent}
    assert len(starts) == 1  # every read counts from the start of the step
    assert all(r.aggregation.alignment_period.total_seconds() >= 60 for r in sent)
    metadata = vertex.metadata("ListTimeSeries")
    assert all(m["authorization"] == f"Bearer {TOKEN}" for m in metadata)


def test_each_linear_step_is_watched_from_its_own_start(vertex: FakeVertex, adc: Any) -> None:
    _, status, notes, traffic = canary(vertex, kind="linear", bake=10.0)

    assert status.state == "healthy", status.reason
    assert traffic.sleeps == [10.0, 10.0, 10.0]  # steps at 25%, 50%, 75% (100% is not baked)
    passes = [n for n in notes if n.startswith("live gate: pass (")]
    assert ["new: 25 requests" in passes[0], "new: 50 requests" in passes[1]] == [True, True]
    assert "new: 75 requests" in passes[2] and "old: 25 requests" in passes[2]
    starts = {r.interval.start_time for r in vertex.requests("ListTimeSeries")}
    assert len(starts) == 3


def test_a_linear_step_that_turns_bad_is_rolled_back(vertex: FakeVertex, adc: Any) -> None:
    vertex.chooser = weighted_round_robin()
    p = provider(vertex.address, monitoring_endpoint=vertex.address)
    push(p, release(1))
    traffic = Traffic(p, vertex.endpoint().name)
    sleeps = 0

    def sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps == 2:
            vertex.latency_ms[V2] = 500.0  # slows down in the second step
        traffic.sleep(seconds)

    p.scope.sleep, p.scope.clock = sleep, traffic.clock
    strategy = Strategy("linear", 25, bake_seconds=10.0, live=RULES)
    notes: list[str] = []
    deployment = p.deploy(
        release(2), "127.0.0.1:1/unused/x@sha256:" + "0" * 64, strategy, notes.append
    )
    status = p.wait(deployment, 120.0, notes.append)

    assert status.state == "failed"
    assert status.reason.startswith("live gate: p99 latency")
    assert any(n.startswith("step 2/4 (50% to ") and "live gate: p99" in n for n in notes)
    assert vertex.traffic() == {V1: 100}


def test_too_little_traffic_goes_on(vertex: FakeVertex, adc: Any) -> None:
    _, status, notes, _ = canary(vertex, per_sleep=4)

    assert status.state == "healthy", status.reason
    assert vertex.traffic() == {V2: 100}
    assert any(n.startswith("live gate: wait (the new version served 1 request(s)") for n in notes)


def test_too_little_traffic_fails_with_require_traffic(vertex: FakeVertex, adc: Any) -> None:
    rules = LiveRules(min_requests=10, interval_seconds=10.0, require_traffic=True)
    _, status, _, _ = canary(vertex, rules=rules, per_sleep=4)

    assert status.state == "failed"
    assert status.reason.startswith("live gate: the new version served 3 request(s)")
    assert "release.live.require_traffic" in status.reason
    assert status.details["rolled_back"] is True
    assert vertex.traffic() == {V1: 100}


def test_monitoring_that_cannot_be_read_rolls_the_step_back(vertex: FakeVertex, adc: Any) -> None:
    denied = "Permission monitoring.timeSeries.list denied on projects/demo-project."
    vertex.fail("ListTimeSeries", grpc.StatusCode.PERMISSION_DENIED, denied, times=10)
    _, status, _, _ = canary(vertex)

    assert status.state == "failed"
    assert "live gate: could not read Cloud Monitoring" in status.reason
    assert "monitoring.timeSeries.list" in status.reason
    assert status.details["rolled_back"] is True
    assert vertex.traffic() == {V1: 100}


def test_without_live_rules_nothing_is_read(vertex: FakeVertex, adc: Any) -> None:
    vertex.broken.add(V2)
    p = provider(vertex.address, monitoring_endpoint=vertex.address)
    push(p, release(1))
    p.scope.sleep = lambda s: None
    push(p, release(2), "canary:25", bake=30.0)
    assert vertex.requests("ListTimeSeries") == []


# -- the fake checks requests as Cloud Monitoring does -----------------------------------


def _client(vertex: FakeVertex) -> Any:
    return monitoring_v3.MetricServiceClient(
        credentials=FakeCredentials(TOKEN),
        client_options=ClientOptions(api_endpoint=vertex.address),
    )


def _request(**overrides: Any) -> Any:
    now = datetime.datetime.now(datetime.timezone.utc)
    request: dict[str, Any] = {
        "name": "projects/demo-project",
        "filter": f'metric.type = "{RESPONSE_COUNT}"',
        "interval": {"start_time": now - datetime.timedelta(minutes=5), "end_time": now},
        "aggregation": {
            "alignment_period": {"seconds": 300},
            "per_series_aligner": monitoring_v3.Aggregation.Aligner.ALIGN_SUM,
        },
    }
    request.update(overrides)
    return monitoring_v3.ListTimeSeriesRequest(request)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "demo-project"}, "Invalid resource name"),
        ({"filter": 'resource.type = "aiplatform.googleapis.com/Endpoint"'}, "one metric.type"),
        ({"filter": f'metric.type = "{RESPONSE_COUNT}" AND metric.labels.model = "x"'},
         "Unknown metric label"),
        ({"filter": f"metric.type = {RESPONSE_COUNT}"}, "Could not parse filter"),
        ({"aggregation": {"alignment_period": {"seconds": 30}, "per_series_aligner": 14}},
         "at least 60s"),
        ({"aggregation": {"alignment_period": {"seconds": 60}, "per_series_aligner": 18}},
         "cannot be applied"),
        ({"aggregation": {"cross_series_reducer": 2}}, "requires a per-series aligner"),
    ],
)  # fmt: skip
def test_the_fake_refuses_what_cloud_monitoring_refuses(
    vertex: FakeVertex, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(gexc.InvalidArgument, match=message):
        list(_client(vertex).list_time_series(request=_request(**overrides)))


def test_the_fake_serves_recorded_points_in_the_interval_summed_by_group(
    vertex: FakeVertex,
) -> None:
    endpoint = "projects/demo-project/locations/us-central1/endpoints/1001"
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    for code in (200, 200, 500):
        vertex.monitoring.record(endpoint, "3001", code, 20.0, at=now - 10)
    vertex.monitoring.record(endpoint, "3001", 200, 20.0, at=now - 600)  # before the interval
    vertex.monitoring.record(endpoint, "3002", 200, 20.0, at=now - 10)  # another model
    request = _request(
        filter=monitoring.metric_filter(RESPONSE_COUNT, endpoint, "3001"),
        aggregation={
            "alignment_period": {"seconds": 300},
            "per_series_aligner": monitoring_v3.Aggregation.Aligner.ALIGN_SUM,
            "cross_series_reducer": monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
            "group_by_fields": ["metric.labels.response_code"],
        },
    )
    series = list(_client(vertex).list_time_series(request=request))
    assert monitoring.response_counts(series) == {"200": 2, "500": 1}


# -- reading distributions -----------------------------------------------------------------


def _series(dist: distribution_pb2.Distribution, latency_type: str = "") -> Any:
    labels = {"latency_type": latency_type} if latency_type else {}
    return monitoring_v3.TimeSeries(
        metric={"type": LATENCIES, "labels": labels},
        points=[{"value": {"distribution_value": dist}}],
    )


def test_p99_of_explicit_buckets_is_interpolated_by_hand() -> None:
    # 100 latencies: 90 in [0, 10) ms, 10 in [10, 20) ms. Rank 99 lies 9/10 into [10, 20).
    options = distribution_pb2.Distribution.BucketOptions(
        explicit_buckets={"bounds": [10.0, 20.0, 40.0]}
    )
    dist = distribution_pb2.Distribution(count=100, bucket_options=options, bucket_counts=[90, 10])
    assert monitoring.p99_ms([_series(dist)]) == pytest.approx(19.0)


def test_p99_of_linear_buckets_and_the_model_latency_series() -> None:
    # linear: offset 0, width 5: bucket 0 is the underflow (< 0), bucket i is [5(i-1), 5i).
    options = distribution_pb2.Distribution.BucketOptions(
        linear_buckets={"num_finite_buckets": 10, "width": 5.0, "offset": 0.0}
    )
    model = distribution_pb2.Distribution(bucket_options=options, bucket_counts=[0, 0, 100])
    overhead = distribution_pb2.Distribution(bucket_options=options, bucket_counts=[0, 100])
    series = [_series(overhead, "overhead"), _series(model, "model")]
    assert monitoring.p99_ms(series) == pytest.approx(5.0 + 5.0 * 0.99)


def test_the_fakes_distribution_round_trips_through_the_reader() -> None:
    dist = distribution([20.0] * 99 + [300.0])
    p99 = monitoring.p99_ms([_series(dist)])
    assert p99 is not None and 16.0 <= p99 <= 20.0 * 1.25
    assert monitoring.p99_ms([]) is None
