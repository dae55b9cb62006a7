"""The rendered rules in a real Prometheus scraping a real serving process: the model not
ready fires, then a model that starts failing fires the error-rate alert; and every query of
the Grafana dashboard is accepted by the same Prometheus."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerting_support import Prometheus, check_rules
from serving_support import ServerProcess, serving_settings

from deployer.alerting.dashboard import dashboard
from deployer.serving import routes

GATE_ENV = "DEPLOYER_TEST_LOAD_GATE"  # tests/fixtures/testing_predictors.py

GOOD = {"instances": [[1, 2, 3, 4]]}
BAD = {"instances": [[1, 2, 3, 666]]}  # the test predictor raises on 666


def render_rules(folder: Path) -> Path:
    """``deployer alerts render`` as a user runs it, over a 10 s window."""
    project = folder / "deployer.yaml"
    project.write_text(
        "name: iris\nmodel: {path: m.onnx}\nmonitoring: {alerts: {error_rate: 0.2}}\n"
    )
    out = folder / "rules.yml"
    done = subprocess.run(
        [sys.executable, "-m", "deployer", "alerts", "render", "--format", "prometheus",
         "--window", "10s", "--out", str(out), "-f", str(project)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    check_rules(out)
    return out


@pytest.fixture(scope="module")
def stack(
    start_server: Any,
    testing_predictor_options: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, Prometheus, Path, Path]]:
    """A gated model server (not ready until the gate file exists) and Prometheus."""
    folder = tmp_path_factory.mktemp("prometheus")
    gate = folder / "gate"
    settings = serving_settings("python", None, flavor_options=testing_predictor_options)
    server = start_server(settings, {GATE_ENV: str(gate)}, wait_path=None)
    server.wait_for("/metrics")
    rules = render_rules(folder)
    prometheus = Prometheus(folder, [f"127.0.0.1:{server.port}"], rules)
    try:
        prometheus.until("ready", lambda: prometheus.client.get("/-/ready").status_code == 200)
        yield server, prometheus, gate, rules
    finally:
        prometheus.stop()
        server.stop()


@pytest.mark.slow
def test_rules_evaluate_and_fire_as_the_model_fails(
    stack: tuple[ServerProcess, Prometheus, Path, Path],
) -> None:
    server, prometheus, gate, rules = stack

    def evaluated() -> bool:
        found = [r for g in prometheus.get("/api/v1/rules")["groups"] for r in g["rules"]]
        return len(found) == 5 and all(r["health"] == "ok" for r in found)

    prometheus.until("every rule evaluated without error", evaluated)
    prometheus.until(
        "the not-ready alert firing", lambda: prometheus.firing("DeployerModelNotReady")
    )

    gate.touch()
    server.wait_for("/ping")
    path = routes.SAGEMAKER_INVOCATIONS

    def served_well() -> bool:
        assert server.client.post(path, json=GOOD).status_code == 200
        query = (
            'sum(rate(deployer_request_duration_seconds_count{route="sagemaker_invocations"}'
            "[10s])) > 0"
        )
        return bool(prometheus.get("/api/v1/query", query=query)["result"])

    prometheus.until("good traffic scraped", served_well)
    error_rule = yaml.safe_load(rules.read_text())["groups"][0]["rules"][0]
    assert error_rule["alert"] == "DeployerHighErrorRate"
    assert prometheus.get("/api/v1/query", query=error_rule["expr"])["result"] == []
    assert not prometheus.firing("DeployerHighErrorRate")

    def failing() -> bool:
        assert server.client.post(path, json=BAD).status_code == 500
        assert server.client.post(path, json=GOOD).status_code == 200
        return prometheus.firing("DeployerHighErrorRate")

    prometheus.until("the error-rate alert firing", failing)
    (alert,) = [
        a
        for a in prometheus.get("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == "DeployerHighErrorRate"
    ]
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["job"] == "model"
    assert float(alert["value"]) > 0.2
    prometheus.until(
        "the not-ready alert resolved", lambda: not prometheus.firing("DeployerModelNotReady")
    )


def test_every_dashboard_query_is_valid_promql(
    stack: tuple[ServerProcess, Prometheus, Path, Path],
) -> None:
    _, prometheus, _, _ = stack
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert len(exprs) >= 15
    for expr in exprs:
        query = expr.replace("$__rate_interval", "10s").replace("$job", ".*")
        answer = prometheus.client.get("/api/v1/query", params={"query": query})
        assert answer.status_code == 200, f"{expr}: {answer.text}"
    found = prometheus.get(
        "/api/v1/query", query='max by (instance) (deployer_model_ready{job=~".*"})'
    )
    assert found["result"], "the dashboard's job variable finds the scraped job"


def test_dashboard_preview_draws_the_live_panels_and_screenshots_them(
    stack: tuple[ServerProcess, Prometheus, Path, Path], tmp_path: Path
) -> None:
    server, prometheus, gate, _ = stack
    gate.touch()
    server.wait_for("/ping")

    def scraped() -> bool:
        server.client.post(routes.SAGEMAKER_INVOCATIONS, json=GOOD)
        query = "sum(rate(deployer_request_duration_seconds_count[10s])) > 0"
        return bool(prometheus.get("/api/v1/query", query=query)["result"])

    prometheus.until("traffic scraped", scraped)
    url = f"http://127.0.0.1:{prometheus.port}"
    done = subprocess.run(
        [sys.executable, "-m", "deployer", "dashboard", "preview", "--prometheus", url,
         "--out", str(tmp_path), "--minutes", "2", "--step", "1", "--png"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "index.html").read_text()
    assert page.count("<svg") == len([p for p in dashboard()["panels"] if p["type"] != "row"])
    assert "Requests per second by route" in page and "<polyline" in page
    assert "sagemaker_invocations" in page  # a legend drawn from the live series
    image = (tmp_path / "dashboard.png").read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 10_000


def test_preview_of_an_unreachable_prometheus_is_an_error_naming_it(tmp_path: Path) -> None:
    from serving_support import free_port

    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "deployer", "dashboard", "preview", "--prometheus", url,
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"--prometheus: cannot reach {url}" in done.stderr
    assert "Traceback" not in done.stderr
