"""Retries, the retry budget, timeouts, least latency, control-plane and synthetic health,
with fake backends that count every request that reaches them (router in this process)."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import pytest
from router_support import (
    JSON_BODY,
    FakeBackend,
    Load,
    RouterThread,
    fake_backends,
    manifest,
    metric_value,
    wait_until,
)

from deployer.providers import Status
from deployer.router import plugins

NO_CHECKS = {"source": "none"}


def entries(fakes: list[FakeBackend], **fields: Any) -> list[dict[str, Any]]:
    return [{"name": f.name, "url": f.url, "health": NO_CHECKS, **fields} for f in fakes]


def test_retry_budget_caps_upstream_attempts_during_an_outage() -> None:
    """Every backend answers 503 and ejection is off: without a budget each request would
    cost 3 attempts; with 20% of the requests (and a floor of 3 retries per window) the
    upstream load stays near the client load. The window (300 s) spans the whole test, so
    the bound does not depend on how long the test takes."""
    window, floor = 300, 3
    with fake_backends(*({"name": f"f{i}", "status": 503} for i in range(3))) as fakes:
        data = manifest(
            backends=entries(fakes),
            retries={
                "attempts": 3,
                "budget_percent": 20,
                "min_per_second": floor / window,
                "window_seconds": window,
            },
            health={"passive": {"consecutive_failures": 1000}},
        )
        with RouterThread(data) as router:
            with Load(router.url, concurrency=4, pause=0) as load:
                wait_until(lambda: load.count() >= 400, timeout=120, message="400 requests")
            metrics = httpx.get(router.url + "/metrics").text
        requests = load.count()
        attempts = sum(f.total() for f in fakes)
        assert set(load.result.statuses) == {503}  # the backends' own answers, unchanged
        retries = metric_value(metrics, "deployer_router_retries_total")
        assert attempts == requests + retries, (attempts, requests, retries)
        assert requests <= attempts <= requests * 1.2 + floor, (attempts, requests)
        assert metric_value(metrics, "deployer_router_retry_budget_exhausted_total") > 0


def test_outage_ejects_and_answers_503_itself_without_touching_backends() -> None:
    with fake_backends({"name": "f0", "status": 502}, {"name": "f1", "status": 502}) as fakes:
        data = manifest(backends=entries(fakes), health={"passive": {"base_ejection": 30}})
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            for _ in range(4):  # two consecutive failures each eject them
                client.post(router.url + "/invocations", content=JSON_BODY)
            before = sum(f.total() for f in fakes)
            answers = [
                client.post(router.url + "/invocations", content=JSON_BODY) for _ in range(50)
            ]
            assert sum(f.total() for f in fakes) == before  # no upstream attempt at all
            body = answers[-1].json()
            assert answers[-1].status_code == 503
            assert body["reason"] == "every backend is unavailable"
            assert body["attempts"] == []
            assert "ejected for" in body["unavailable"]["f0"]
            assert "2 consecutive failures" in body["unavailable"]["f1"]
            metrics = client.get(router.url + "/metrics").text
            assert metric_value(metrics, "deployer_router_backend_ejections_total", backend="f0")
            assert metric_value(metrics, "deployer_router_no_backend_total") >= 50


def test_connection_errors_429_and_5xx_go_to_another_backend() -> None:
    with fake_backends({"name": "busy", "status": 429}, {"name": "ok"}) as fakes:
        data = manifest(backends=entries(fakes), policy="weighted")
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            answers = [
                client.post(router.url + "/invocations", content=JSON_BODY) for _ in range(10)
            ]
        assert {a.status_code for a in answers} == {200}
        assert {a.headers["x-deployer-backend"] for a in answers} == {"ok"}
        assert any(a.headers.get("x-deployer-retries") == "1" for a in answers)
        assert fakes[0].total() > 0  # 429 is not a failure of health: it kept being tried


def test_an_answer_that_is_not_retried_passes_through() -> None:
    body = b'{"error": "model raised ValueError: bad input"}'
    with fake_backends({"name": "a", "status": 500, "body": body}, {"name": "b"}) as fakes:
        data = manifest(backends=entries(fakes), retries={"retry_on": ["connect-failure"]})
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            answers = [
                client.post(router.url + "/invocations", content=JSON_BODY) for _ in range(2)
            ]
        failed = [a for a in answers if a.status_code == 500]
        assert failed and failed[0].content == body
        assert failed[0].headers["x-deployer-backend"] == "a"


def test_per_request_timeout_moves_on_and_bounds_the_wait() -> None:
    with fake_backends({"name": "slow", "delay": 3.0}, {"name": "fast"}) as fakes:
        data = manifest(backends=entries(fakes), timeouts={"request": 0.3, "total": 5})
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            answers = [
                client.post(router.url + "/invocations", content=JSON_BODY) for _ in range(4)
            ]
        assert {a.status_code for a in answers} == {200}
        assert {a.headers["x-deployer-backend"] for a in answers} == {"fast"}
    with fake_backends({"name": "slow", "delay": 3.0}) as fakes:
        data = manifest(backends=entries(fakes), timeouts={"request": 0.3, "total": 5})
        with RouterThread(data) as router:
            answer = httpx.post(router.url + "/invocations", content=JSON_BODY, timeout=10)
        assert answer.status_code == 503
        assert answer.json()["attempts"][0]["error"] == "timeout: no answer within 0.3s"


def test_least_latency_prefers_the_fast_backend_and_keeps_probing() -> None:
    with fake_backends({"name": "slow", "delay": 0.03}, {"name": "fast"}) as fakes:
        data = manifest(backends=entries(fakes), policy="least-latency")
        with RouterThread(data) as router, Load(router.url, concurrency=2, pause=0.001) as load:
            # measured first, then probed again every 2 s (so a recovery would be seen)
            load.wait_for(
                lambda r: r.backends()["slow"] >= 3 and r.backends()["fast"] >= 300,
                message="the slow backend probed again",
            )
        seen = load.result.backends()
        assert not load.result.failures
        assert seen["fast"] > 0.9 * sum(seen.values()), seen


class FakeCloud:
    """A provider plugin whose control plane answers what the test says."""

    name = "fakecloud"
    state: ClassVar[str] = "healthy"
    asked: ClassVar[list[tuple[str, dict[str, Any], str]]] = []

    def __init__(self, target: Any, project: Any) -> None:
        self.target = target
        FakeCloud.asked.append((target.name, dict(target.options), project.name))

    def status(self) -> Status:
        return Status(self.target.name, FakeCloud.state, reason="endpoint Failed: OOM")  # type: ignore[arg-type]


@pytest.fixture
def fake_cloud(monkeypatch: pytest.MonkeyPatch) -> type[FakeCloud]:
    FakeCloud.state = "healthy"
    FakeCloud.asked = []
    monkeypatch.setattr(plugins, "provider_class", lambda name: FakeCloud)
    return FakeCloud


def test_control_plane_status_takes_a_managed_endpoint_out_and_back(
    fake_cloud: type[FakeCloud],
) -> None:
    with fake_backends({"name": "cloud"}, {"name": "spare"}) as (cloud, spare):
        data = manifest(
            name="iris-prod",
            backends=[
                {
                    "name": "cloud",
                    "provider": "fakecloud",
                    "url": cloud.url + "/invoke",
                    "url_mode": "fixed",
                    "health": {"source": "control-plane"},
                    "target": {"endpoint": "iris-prod", "region": "eu-west-1"},
                },
                {"name": "spare", "url": spare.url, "health": NO_CHECKS, "tier": 1},
            ],
            health={"control_plane": {"interval": 0.2, "timeout": 2}},
        )

        def served_by() -> str:
            answer = httpx.post(router.url + "/invocations", content=JSON_BODY, timeout=10)
            return str(answer.headers["x-deployer-backend"])

        with RouterThread(data) as router:
            assert served_by() == "cloud"
            assert cloud.seen[-1]["path"] == "/invoke"
            fake_cloud.state = "failed"
            wait_until(lambda: served_by() == "spare", message="control plane says failed")
            state = httpx.get(router.url + "/-/router/health").json()["backends"][0]
            assert (
                state["reason"] == "control-plane check failing: control plane says failed: "
                "endpoint Failed: OOM"
            )
            fake_cloud.state = "updating"  # an endpoint being updated still serves
            wait_until(lambda: served_by() == "cloud", message="back in service")
        assert ("cloud", {"endpoint": "iris-prod", "region": "eu-west-1"}, "iris-prod") in (
            fake_cloud.asked
        )


def test_synthetic_predictions_check_an_endpoint_without_a_health_route() -> None:
    with fake_backends({"name": "cloud", "status": 500}, {"name": "spare"}) as (cloud, spare):
        data = manifest(
            backends=[
                {
                    "name": "cloud",
                    "url": cloud.url + "/score",
                    "url_mode": "fixed",
                    "health": NO_CHECKS,
                    "synthetic": {"body": '{"instances": [[1, 2, 3, 4]]}', "interval": 0.2},
                },
                {"name": "spare", "url": spare.url, "health": NO_CHECKS, "tier": 1},
            ]
        )
        with RouterThread(data) as router:

            def states() -> dict[str, Any]:
                answer = httpx.get(router.url + "/-/router/health").json()
                return {b["name"]: b for b in answer["backends"]}

            wait_until(lambda: not states()["cloud"]["available"], message="synthetic fails")
            assert "synthetic prediction answered 500" in states()["cloud"]["reason"]
            cloud.status = 200
            wait_until(lambda: states()["cloud"]["available"], message="synthetic passes")
        synthetic = [s for s in cloud.seen if s["body"] == b'{"instances": [[1, 2, 3, 4]]}']
        assert synthetic and synthetic[0]["path"] == "/score"


def test_a_backends_own_timeout_replaces_the_routers() -> None:
    # SageMaker answers within 60 s, Azure within 180 s: the router's request timeout must
    # not cut them short. Here: the router's 0.3 s (total 0.5 s) against a backend that
    # takes 1 s and declares 5 s; and a backend's own 0.3 s under the router's 10 s
    with fake_backends({"name": "slow", "delay": 1.0}) as fakes:
        data = manifest(backends=entries(fakes, timeout=5), timeouts={"request": 0.3, "total": 0.5})
        with RouterThread(data) as router:
            answer = httpx.post(router.url + "/invocations", content=JSON_BODY, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-deployer-backend"] == "slow"
        data = manifest(backends=entries(fakes, timeout=0.3), timeouts={"request": 10, "total": 20})
        with RouterThread(data) as router:
            answer = httpx.post(router.url + "/invocations", content=JSON_BODY, timeout=10)
        assert answer.status_code == 503
        assert answer.json()["attempts"][0]["error"] == "timeout: no answer within 0.3s"


def test_a_body_over_a_backends_limit_goes_elsewhere_or_is_413_before_forwarding() -> None:
    large = b'{"instances": [' + b"0," * 1000 + b"0]}"  # over 1 KB, under the router's limit
    with fake_backends({"name": "vertex"}, {"name": "k8s"}) as fakes:
        vertex, k8s = fakes
        small = {**entries([vertex])[0], "max_body_mb": 1 / 1024}  # 1 KB
        data = manifest(backends=[small, *entries([k8s])])
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            answers = [client.post(router.url + "/invocations", content=large) for _ in range(4)]
            assert {a.headers["x-deployer-backend"] for a in answers} == {"k8s"}
            small_ones = [client.post(router.url + "/invocations", content=JSON_BODY)]
            small_ones += [client.post(router.url + "/invocations", content=JSON_BODY)]
            assert {a.headers["x-deployer-backend"] for a in small_ones} == {"vertex", "k8s"}
        assert vertex.requests["/invocations"] == 1  # one small one only
        data = manifest(backends=[small])
        with RouterThread(data) as router:
            refused = httpx.post(router.url + "/invocations", content=large, timeout=10)
        assert refused.status_code == 413
        assert refused.json()["limits"] == {"vertex": "0.000976562 MB (1024 bytes)"}
        assert f"request body of {len(large)} bytes" in refused.json()["error"]
        assert vertex.requests["/invocations"] == 1  # never forwarded
