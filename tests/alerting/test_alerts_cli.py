"""``deployer alerts render`` and ``deployer dashboard render`` as a user runs them, and the
dashboard against Grafana's dashboard schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from alerting_support import check_rules

from deployer.alerting.dashboard import dashboard

SCHEMA = Path(__file__).with_name("grafana_dashboard.schema.json")
PROJECT = """name: iris
model: {path: m.onnx}
monitoring:
  drift: {psi: 0.15}
  alerts: {error_rate: 0.1, p99_ms: 500}
targets:
  dev: {provider: local}
"""


def deployer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "deployer.yaml").write_text(PROJECT)
    return tmp_path


def test_render_to_a_local_target_writes_prometheus_rules_with_the_thresholds(
    project: Path,
) -> None:
    done = deployer("alerts", "render", "--to", "dev", "--out", "rules.yml", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "wrote rules.yml (prometheus)" in done.stderr
    check_rules(project / "rules.yml")
    exprs = [
        r["expr"] for r in yaml.safe_load((project / "rules.yml").read_text())["groups"][0]["rules"]
    ]
    assert exprs[0].endswith("> 0.1") and exprs[1].endswith("> 0.5") and exprs[3].endswith("> 0.15")


def test_json_output_lists_what_the_platform_cannot_express(project: Path) -> None:
    done = deployer("alerts", "render", "--format", "cloudwatch", "-o", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert len(result["document"]["alarms"]) == 2
    assert {s["rule"] for s in result["skipped"]} == {
        "DeployerModelNotReady",
        "DeployerFeatureDrift",
        "DeployerPredictionDrift",
    }
    text = deployer("alerts", "render", "--format", "cloudwatch", cwd=project)
    assert "skipped DeployerFeatureDrift: drift on SageMaker needs" in text.stderr
    assert json.loads(text.stdout)["alarms"][1]["Threshold"] == 500_000


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--format", "nagios"], "unknown alert format 'nagios'"),
        (["--format", "prometheus", "--window", "5x"], "--window: '5x' is not a duration"),
        (["--to", "nope"], "no target 'nope'"),
        ([], "--format is needed"),
    ],
)
def test_bad_input_is_exit_2_naming_it(project: Path, args: list[str], expected: str) -> None:
    done = deployer("alerts", "render", *args, cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_threshold_in_deployer_yaml_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "deployer.yaml").write_text(PROJECT.replace("error_rate: 0.1", "error_rate: 2"))
    done = deployer("alerts", "render", "--format", "prometheus", cwd=tmp_path)
    assert done.returncode == 2
    assert "monitoring.alerts.error_rate" in done.stderr
    assert "Traceback" not in done.stderr


def test_dashboard_render_writes_grafana_json_valid_against_its_schema(project: Path) -> None:
    import jsonschema

    done = deployer("dashboard", "render", "--out", "dashboard.json", cwd=project)
    assert done.returncode == 0, done.stderr
    document = json.loads((project / "dashboard.json").read_text())
    assert document["title"] == "deployer: iris"
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(document)


def test_dashboard_panels_tile_the_grid_and_cover_every_metric() -> None:
    document = dashboard()
    panels = document["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24, p["title"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    queries = " ".join(t["expr"] for p in panels for t in p.get("targets", []))
    for metric in (
        "deployer_request_duration_seconds_bucket",
        "deployer_batch_requests_bucket",
        "deployer_feature_psi",
        "deployer_prediction_psi",
        "deployer_model_ready",
        "deployer_router_backend_requests_total",
        "deployer_router_backend_ejections_total",
    ):
        assert metric in queries
    for p in panels:
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == "${datasource}"
