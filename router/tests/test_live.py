"""The built-in router as a real process in front of real model servers.

Load is steady (a few client threads on keep-alive connections); a backend is killed
with SIGKILL under it. No timing thresholds: assertions are about which requests failed
and where traffic went, with the health window given by the manifest.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from router_support import (
    BACKEND_HEADER,
    JSON_BODY,
    Load,
    manifest,
    model_entry,
    wait_until,
    write_manifest,
)
from scipy.stats import chisquare

pytestmark = pytest.mark.slow

OIP_BODY = json.dumps(
    {
        "inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
        ]
    }
).encode()


def test_bodies_go_through_unchanged_with_the_backend_named(
    models: Any, router_factory: Any
) -> None:
    a, b = models[:2]
    router = router_factory(manifest(backends=[model_entry(a), model_entry(b)]))
    cases = [
        ("/invocations", JSON_BODY, "application/json"),
        ("/invocations", b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv"),
        ("/v2/models/iris/infer", OIP_BODY, "application/json"),
        ("/invocations", b'{"instances": [[1, 2]]}', "application/json"),  # 400, not retried
    ]
    with httpx.Client(timeout=10) as client:
        for path, body, content_type in cases:
            headers = {"content-type": content_type}
            direct = client.post(a.url + path, content=body, headers=headers)
            routed = client.post(router.url + path, content=body, headers=headers)
            assert routed.status_code == direct.status_code, routed.text
            assert routed.content == direct.content
            assert routed.headers["content-type"] == direct.headers["content-type"]
            assert routed.headers[BACKEND_HEADER] in ("m0", "m1")
            assert "x-deployer-retries" not in routed.headers
        assert client.get(router.url + "/v2/models/iris").json()["name"] == "iris"
    metrics = router.metrics()
    assert 'deployer_router_backend_responses_total{backend="m0",code="400"}' in metrics or (
        'deployer_router_backend_responses_total{backend="m1",code="400"}' in metrics
    )
    assert "deployer_router_retries_total 0.0" in metrics


def test_weights_are_honoured(models: Any, router_factory: Any) -> None:
    weights = {"m0": 1, "m1": 3, "m2": 6}
    entries = [model_entry(m, weight=weights[m.name]) for m in models[:3]]
    router = router_factory(manifest(backends=entries))
    with Load(router.url, concurrency=4, pause=0) as load:
        wait_until(lambda: load.count() >= 2000, timeout=120, message="2000 requests")
    result = load.result
    assert not result.failures
    seen = result.backends()
    total = sum(seen.values())
    expected = [total * weights[name] / 10 for name in weights]
    observed = [seen[name] for name in weights]
    # smooth weighted round robin is exact up to requests in flight; chi-square is generous
    assert chisquare(observed, expected).pvalue > 0.01, (observed, expected)
    for name, share in weights.items():
        assert abs(seen[name] / total - share / 10) < 0.02, (seen, total)


def test_kill_a_backend_under_load_no_client_fails_and_it_comes_back(
    models: Any, router_factory: Any
) -> None:
    entries = [model_entry(m) for m in models[:3]]
    data = manifest(backends=entries)
    ejection = data["health"]["passive"]["base_ejection"]
    router = router_factory(data)
    victim = models[1]
    with Load(router.url, concurrency=6) as load:
        load.wait_for(lambda r: r.backends()["m1"] >= 50, message="traffic on m1")
        victim.kill()
        # passive ejection and the active check take it out; traffic moves to the others
        wait_until(lambda: not router.backend_states()["m1"]["available"], message="m1 out")
        out = load.mark()
        out_at = time.monotonic()
        attempts_when_out = router.metric("deployer_router_backend_requests_total", backend="m1")

        def stayed_out() -> bool:
            """It stays out while dead, also past its ejection (the active check keeps it
            out): the others serve, and more than the ejection time has gone by (a lower
            bound: a slow machine only waits longer)."""
            assert not router.backend_states()["m1"]["available"], "a dead backend came back"
            served = load.result.backends(out)
            return (
                min(served["m0"], served["m2"]) >= 30 and time.monotonic() - out_at > 2 * ejection
            )

        wait_until(stayed_out, message="the others serve while m1 is out")
        attempts_while_dead = router.metric("deployer_router_backend_requests_total", backend="m1")
        victim.start()
        victim.wait()
        wait_until(lambda: router.backend_states()["m1"]["available"], message="m1 back")
        back = load.mark()
        load.wait_for(lambda r: r.backends(back)["m1"] >= 20, message="m1 again")
    result = load.result
    assert not result.failures, result.failures[:5]
    # no request was even attempted on it once it was out (the health window)
    assert attempts_while_dead == attempts_when_out
    assert result.backends(out, back)["m0"] > 0
    assert result.backends(out, back)["m2"] > 0
    # requests in flight when it died failed (reset or refused) and were retried elsewhere
    metrics = router.metrics()
    errors = [
        line
        for line in metrics.splitlines()
        if line.startswith('deployer_router_backend_errors_total{backend="m1"')
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in errors) > 0, errors
    assert router.metric("deployer_router_retries_total") > 0


def test_lower_tier_serves_only_while_the_higher_is_down_then_fails_back(
    models: Any, router_factory: Any
) -> None:
    primary, backup = models[0], models[1]
    router = router_factory(
        manifest(backends=[model_entry(primary, tier=0), model_entry(backup, tier=1)])
    )
    with Load(router.url, concurrency=4) as load:
        load.wait_for(lambda r: len(r.events) >= 100, message="100 requests")
        assert set(load.result.backends()) == {"m0"}
        primary.kill()
        wait_until(lambda: not router.backend_states()["m0"]["available"], message="m0 out")
        failed_over = load.mark()
        load.wait_for(lambda r: r.backends(failed_over)["m1"] >= 50, message="tier 1")
        restarted = load.mark()
        primary.start()
        primary.wait()
        wait_until(lambda: router.backend_states()["m0"]["available"], message="m0 back")
        settled = load.wait_steady({"m0"}, message="failback", count=50)
        load.wait_for(lambda r: r.backends(settled)["m0"] >= 50, message="on m0")
    result = load.result
    assert not result.failures, result.failures[:5]
    # requests sent while m0 was out (and answered before it restarted) all went to tier 1
    assert result.backends(failed_over, restarted, whole=True)["m0"] == 0
    # failback: once m0 serves again, the lower tier gets nothing (it only served the outage)
    assert result.backends(settled, whole=True)["m1"] == 0
    assert router.metric("deployer_router_backend_requests_total", backend="m1") > 0


def test_full_outage_fast_503_with_a_clear_body(router_factory: Any) -> None:
    from serving_support import free_port

    entries = [{"name": f"dead{i}", "url": f"http://127.0.0.1:{free_port()}"} for i in range(2)]
    router = router_factory(manifest(backends=entries))
    with httpx.Client(timeout=10) as client:
        answer = client.post(router.url + "/invocations", content=JSON_BODY)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["retry-after"] == "1"
    body = answer.json()
    assert body["error"] == "no backend could answer this request"
    # the startup health check already found both down: no attempt is even made
    assert body["reason"] == "every backend is unavailable"
    assert body["attempts"] == []
    assert set(body["unavailable"]) == {"dead0", "dead1"}
    assert "connection refused" in body["unavailable"]["dead0"]
    health = httpx.get(router.url + "/-/router/health").json()
    assert health["ok"] is False


def test_reload_under_load_drops_nothing(models: Any, router_factory: Any, tmp_path: Any) -> None:
    a, b, c = models[:3]
    data = manifest(backends=[model_entry(a), model_entry(b)])
    router = router_factory(data)
    with Load(router.url, concurrency=6) as load:
        load.wait_for(lambda r: len(r.events) >= 200, message="load")
        # 1. by SIGHUP: drop m1, add m2 with a big weight
        data["backends"] = [model_entry(a, weight=1), model_entry(c, weight=4)]
        write_manifest(router.manifest_path, data)
        router.reload()
        wait_until(lambda: set(router.backend_states()) == {"m0", "m2"}, message="reload 1")
        first = load.mark()
        load.wait_for(lambda r: r.backends(first)["m2"] >= 100, message="m2 traffic")
        # 2. by editing the file (the router watches it)
        data["backends"] = [model_entry(b), model_entry(c)]
        before_second = load.mark()
        write_manifest(router.manifest_path, data)
        wait_until(lambda: set(router.backend_states()) == {"m1", "m2"}, message="reload 2")
        second = load.mark()
        load.wait_for(lambda r: r.backends(second)["m1"] >= 50, message="m1 again")
        # 3. a broken file is refused and the router keeps serving
        router.manifest_path.write_text("name: iris\nbackends: [{name: x}]\n")
        wait_until(lambda: "reload failed" in router.log(), message="refused reload")
        refused = load.mark()
        load.wait_for(lambda r: len(r.between(refused)) >= 200, message="more load")
    result = load.result
    assert not result.failures, result.failures[:5]
    # requests sent after a swap was observed go by the new manifest only
    assert result.backends(first, before_second, whole=True)["m1"] == 0
    assert result.backends(second, whole=True)["m0"] == 0
    assert set(result.backends(refused, whole=True)) == {"m1", "m2"}
    assert "backends.0.url: required field is missing" in router.log()
    assert 'deployer_router_reloads_total{result="ok"} 2.0' in router.metrics()


def test_metrics_and_access_log(models: Any, router_factory: Any) -> None:
    router = router_factory(
        manifest(backends=[model_entry(models[0])], access_log={"enabled": True, "path": "-"})
    )
    with httpx.Client(timeout=10) as client:
        for _ in range(5):
            client.post(
                router.url + "/invocations?trace=secret",
                content=JSON_BODY,
                headers={"authorization": "Bearer do-not-log"},
            )
    metrics = router.metrics()
    for line in (
        'deployer_router_backend_requests_total{backend="m0"} 5.0',
        'deployer_router_backend_responses_total{backend="m0",code="200"} 5.0',
        'deployer_router_backend_latency_seconds_count{backend="m0"} 5.0',
        'deployer_router_backend_ejections_total{backend="m0"} 0.0',
        'deployer_router_backend_healthy{backend="m0"} 1.0',
        'deployer_router_requests_total{code="200"} 5.0',
    ):
        assert line in metrics, line
    lines = wait_until(
        lambda: [x for x in router.log().splitlines() if '"method"' in x][-5:] or None,
        message="access log lines",
    )
    record = json.loads(lines[-1])
    assert record["path"] == "/invocations"  # no query string
    assert record["status"] == 200 and record["backend"] == "m0" and record["attempts"] == 1
    assert {"ts", "ms", "in", "out", "client"} <= set(record)
    assert "do-not-log" not in router.log() and "secret" not in router.log()
