"""Live gates on Kubernetes: while the canary bakes, the old and the new pods' /metrics are
read through the API server's pod proxy (the real client against the fake, which answers
each image's scripted traffic) and compared; a worse canary is removed with the reason.

Virtual time: the provider's clock is a ``PollClock``, so a 60 s bake is a few polls."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from k8s_support import ADMIN_TOKEN, PollClock, ProviderFactory, image_ref, release
from k8sfake import FakeKube
from test_k8s_timeouts import APPS, PODS, V1, V2, assert_only_v1_runs, first_push, use_clock

from deployer.providers import Status, Strategy
from deployer.providers.live import LiveRules
from deployer_kubernetes.provider import KubernetesProvider

RULES = LiveRules(interval_seconds=10, min_requests=20)


def canary(
    fake: FakeKube,
    provider: KubernetesProvider,
    monkeypatch: pytest.MonkeyPatch,
    rules: LiveRules = RULES,
    kind: str = "canary",
    percent: int = 50,
) -> tuple[Status, list[str]]:
    """Push version 2 as a canary with a 60 s bake under ``rules``, in virtual time."""
    lines: list[str] = []
    strategy = Strategy(kind, percent, bake_seconds=60, live=rules)  # type: ignore[arg-type]
    deployment = provider.deploy(release(2), image_ref(2), strategy, lines.append)
    use_clock(monkeypatch, PollClock())
    return provider.wait(deployment, 600, lines.append), lines


def pod_scrapes(fake: FakeKube) -> list[str]:
    """The pod proxy paths requested (the client sends NAME:PORT as NAME%3APORT)."""
    paths = [unquote(r.path) for r in fake.requests]
    return [path for path in paths if "/pods/" in path and "/proxy/" in path]


@pytest.fixture
def provider(fake: FakeKube, make_provider: ProviderFactory) -> KubernetesProvider:
    """Version 1 live on 2 pods; polls of 5 virtual seconds."""
    made: KubernetesProvider = make_provider(replicas=2, poll_interval=5)
    first_push(made)
    return made


def assert_rolled_back(status: Status, fake: FakeKube, reason: str) -> None:
    assert status.state == "failed" and status.version == V1
    assert status.reason.startswith(f"live gate: {reason}")
    assert status.reason.endswith(f"; rolled back: {V1} keeps serving")
    assert status.details["rolled_back"] is True
    assert status.details["live_gate"]["outcome"] == "fail"
    fake.settle()  # the canary's pods go with their ReplicaSet
    assert_only_v1_runs(fake)


def test_a_canary_answering_500s_is_rolled_back_with_the_error_rates(
    fake: FakeKube, provider: KubernetesProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.runtime.script(image_ref(1), ok=20)  # type: ignore[attr-defined]
    fake.runtime.script(image_ref(2), ok=5, errors=5)  # type: ignore[attr-defined]
    status, lines = canary(fake, provider, monkeypatch)
    assert_rolled_back(status, fake, "error rate 50.00% on the new version against 0.00%")
    gate = status.details["live_gate"]
    # 2 pods of each version, scraped once since the step began: the first comparison fails
    assert gate["new"]["requests"] == 20 and gate["new"]["errors"] == 10
    assert gate["old"]["requests"] == 40 and gate["old"]["errors"] == 0
    assert any(line.startswith("live gate: fail (error rate 50.00%") for line in lines)
    assert not any(line.startswith("promoting ") for line in lines)
    scrapes = pod_scrapes(fake)
    assert scrapes and all(path.endswith(":8080/proxy/metrics") for path in scrapes)
    assert provider.status().healthy and provider.status().version == V1


def test_a_slower_canary_is_rolled_back_with_the_p99s(
    fake: FakeKube, provider: KubernetesProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.runtime.script(image_ref(1), ok=20, seconds=0.004)  # type: ignore[attr-defined]
    fake.runtime.script(image_ref(2), ok=20, seconds=0.8)  # type: ignore[attr-defined]
    status, _ = canary(fake, provider, monkeypatch)
    assert_rolled_back(status, fake, "p99 latency ")
    assert "ms on the new version against" in status.reason
    assert status.details["live_gate"]["new"]["p99_ms"] > 500


def test_a_good_canary_is_promoted_after_passing_every_comparison(
    fake: FakeKube, provider: KubernetesProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.runtime.script(image_ref(1), ok=20)  # type: ignore[attr-defined]
    fake.runtime.script(image_ref(2), ok=20)  # type: ignore[attr-defined]
    status, lines = canary(fake, provider, monkeypatch)
    assert status.healthy and status.version == V2, status.reason
    verdicts = [line for line in lines if line.startswith("live gate: ")]
    assert len(verdicts) == 6  # a 60 s bake, compared every 10 s
    assert all(line.startswith("live gate: pass (new: ") for line in verdicts)
    assert lines.index(verdicts[-1]) < next(
        i for i, line in enumerate(lines) if line.startswith("promoting ")
    )
    assert [d["metadata"]["name"] for d in fake.objects(*APPS)] == ["iris-k8s"]


def test_a_linear_rollout_compares_at_every_step(
    fake: FakeKube, provider: KubernetesProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.runtime.script(image_ref(1), ok=20)  # type: ignore[attr-defined]
    fake.runtime.script(image_ref(2), ok=20)  # type: ignore[attr-defined]
    status, lines = canary(fake, provider, monkeypatch, kind="linear", percent=40)
    assert status.healthy and status.version == V2, status.reason
    steps = [line for line in lines if line.startswith("baking ")]
    assert len(steps) == 2  # 40% and 80%
    assert sum(line.startswith("live gate: pass") for line in lines) == 12


def test_too_little_traffic_goes_on_and_fails_only_when_traffic_is_required(
    fake: FakeKube, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider(replicas=2, poll_interval=5)
    first_push(provider)
    status, lines = canary(fake, provider, monkeypatch)  # nobody sends requests
    assert status.healthy and status.version == V2
    assert any("live gate: wait (the new version served 0 request(s)" in line for line in lines)
    provider.rollback(lambda _: None)
    assert provider.status().version == V1
    strict = LiveRules(interval_seconds=10, min_requests=20, require_traffic=True)
    status, _ = canary(fake, provider, monkeypatch, rules=strict)
    assert status.state == "failed" and status.version == V1
    assert status.reason.startswith("live gate: the new version served 0 request(s)")
    assert "(release.live.require_traffic)" in status.reason
    assert status.details["live_gate"]["outcome"] == "fail"
    fake.settle()  # the canary's pods go with their ReplicaSet
    assert_only_v1_runs(fake)


def test_without_live_rules_the_bake_reads_no_metrics(
    fake: FakeKube, provider: KubernetesProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.runtime.script(image_ref(2), errors=20)  # type: ignore[attr-defined]
    lines: list[str] = []
    deployment = provider.deploy(
        release(2), image_ref(2), Strategy("canary", 50, bake_seconds=60), lines.append
    )
    use_clock(monkeypatch, PollClock())
    status = provider.wait(deployment, 600, lines.append)
    assert status.healthy and status.version == V2
    assert not pod_scrapes(fake) and not any(line.startswith("live gate") for line in lines)


# -- the fake's pod proxy, through the real client ------------------------------------------


def core(fake: FakeKube, token: str = ADMIN_TOKEN) -> Any:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = fake.url
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.CoreV1Api(client.ApiClient(configuration))


def test_the_pod_proxy_answers_each_pods_metrics_as_the_api_server_does(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    from kubernetes.client.exceptions import ApiException

    first_push(make_provider(replicas=2))
    fake.runtime.script(image_ref(1), ok=3, errors=1)  # type: ignore[attr-defined]
    api = core(fake)
    pods = sorted(p["metadata"]["name"] for p in fake.objects(*PODS))
    text = api.connect_get_namespaced_pod_proxy_with_path(f"{pods[0]}:8080", "default", "metrics")
    assert 'deployer_request_duration_seconds_count{route="/invocations",status="200"} 3.0' in text
    assert 'deployer_request_duration_seconds_count{route="/invocations",status="500"} 1.0' in text
    again = api.connect_get_namespaced_pod_proxy_with_path(
        f"http:{pods[0]}:8080", "default", "metrics"
    )
    assert 'status="200"} 6.0' in again  # the counters of this pod grow with each scrape
    other = api.connect_get_namespaced_pod_proxy_with_path(f"{pods[1]}:8080", "default", "metrics")
    assert 'status="200"} 3.0' in other  # per pod
    with pytest.raises(ApiException) as refused:  # nothing listens on port 80
        api.connect_get_namespaced_pod_proxy_with_path(pods[0], "default", "metrics")
    assert refused.value.status == 503
    with pytest.raises(ApiException) as missing:
        api.connect_get_namespaced_pod_proxy_with_path("nope:8080", "default", "metrics")
    assert missing.value.status == 404


def test_the_pod_proxy_needs_get_on_pods_proxy(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    from kubernetes.client.exceptions import ApiException

    first_push(make_provider())
    fake.add_user("reader-token", "reader", {"list"})
    pod = fake.objects(*PODS)[0]["metadata"]["name"]
    with pytest.raises(ApiException) as denied:
        core(fake, "reader-token").connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:8080", "default", "metrics"
        )
    assert denied.value.status == 403
    assert '"pods/proxy"' in denied.value.body
