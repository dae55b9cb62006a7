"""``deployer drift`` end to end through a provider that captures: the same distribution
passes (exit 0), a shifted one drifts (exit 1), -o json, --report, and bad input (exit 2)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import joblib
import pandas as pd
import pytest
from monitoring_support import START, CapturingCloud, cli, json_of, records_of, training_rows

from deployer.providers.monitoring import CapturedRecord, format_time


def captured_like_training(project: Path, seed: int, shift: float = 0.0, rows: int = 500) -> None:
    """``rows`` live rows drawn like the training set (moved by ``shift``), with the
    model's predictions, as the target's captured records."""
    columns = training_rows(rows, seed, shift)
    model = joblib.load(project / "model.joblib")
    predictions = model.predict(pd.DataFrame({"x": columns["x"], "n": columns["n"]}))
    CapturingCloud.records = records_of(columns, list(predictions))


def drift(project: Path, *args: str) -> object:
    return cli("drift", "-f", str(project / "deployer.yaml"), "--to", "live", *args)


def test_the_training_distribution_does_not_drift(project: Path) -> None:
    captured_like_training(project, seed=11)
    run = drift(project, "--since", "7d")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "no drift" in run.stderr
    for name in ("x", "n", "color", "(prediction)"):
        assert name in run.stdout


def test_a_shifted_distribution_drifts(project: Path) -> None:
    captured_like_training(project, seed=12, shift=2.0)
    run = drift(project, "-o", "json")
    assert run.exit_code == 1, run.stdout + run.stderr
    found = json_of(run)
    verdicts = {f["name"]: f["verdict"] for f in found["features"]}
    assert verdicts == {"x": "drift", "n": "ok", "color": "drift", "(prediction)": "drift"}
    assert found["drift"] is True and found["drifted"] == ["color", "x", "(prediction)"]
    assert (found["records"], found["rows"], found["target"]) == (50, 500, "live")
    x = next(f for f in found["features"] if f["name"] == "x")
    assert set(x) >= {"psi", "ks", "js", "chi2_p", "over", "rows", "missing", "kind"}
    assert x["psi"] > 0.2 and x["ks"] > 0.2 and x["chi2_p"] < 0.01
    assert found["thresholds"]["psi"] == 0.2 and found["thresholds"]["min_rows"] == 100
    assert found["baseline"]["data"]["rows"] == 400


def test_report_draws_each_drifting_feature(project: Path, tmp_path: Path) -> None:
    captured_like_training(project, seed=12, shift=2.0)
    out = tmp_path / "report"
    run = drift(project, "--report", str(out))
    assert run.exit_code == 1, run.stdout + run.stderr
    pictures = sorted(p.name for p in out.glob("*.png"))
    assert pictures == ["drift-color.png", "drift-prediction.png", "drift-x.png"]
    assert all((out / p).read_bytes().startswith(b"\x89PNG") for p in pictures)
    index = (out / "index.html").read_text()
    assert all(f'src="{p}"' in index for p in pictures) and "not enough" not in index


def test_too_few_rows_give_no_verdict(project: Path) -> None:
    captured_like_training(project, seed=13, shift=2.0, rows=50)  # min_rows is 100
    found = json_of(drift(project, "-o", "json"))
    assert {f["verdict"] for f in found["features"]} == {"not enough data"}
    assert found["drift"] is False
    assert drift(project).exit_code == 0


def test_since_reaches_the_provider(project: Path) -> None:
    CapturingCloud.records = [CapturedRecord("old", START, [{"x": 1.0}], [1])]
    later = START + timedelta(hours=1)
    found = json_of(drift(project, "--since", format_time(later), "-o", "json"))
    assert CapturingCloud.asked[-1] == later
    assert found["records"] == 0
    assert {f["verdict"] for f in found["features"]} == {"not captured"}
    run = drift(project, "--since", "yesterday")
    assert run.exit_code == 2 and "--since 'yesterday'" in run.stderr


def test_a_target_that_captures_nothing_is_bad_input(project: Path) -> None:
    run = cli("drift", "-f", str(project / "deployer.yaml"), "--to", "plain")
    assert run.exit_code == 2
    assert "'plain'" in run.stderr and "monitoring.capture" in run.stderr


def test_no_baseline_says_how_to_record_one(project: Path) -> None:
    lock = json.loads((project / "deployer.lock").read_text())
    lock["baseline"] = None
    (project / "deployer.lock").write_text(json.dumps(lock))
    run = drift(project, "-o", "json")
    assert run.exit_code == 2
    assert "deployer baseline --data" in json_of(run)["hint"]


@pytest.mark.parametrize("args", [["--help"], ["drift", "--help"], ["baseline", "--help"]])
def test_help_imports_no_scipy_matplotlib_or_pyarrow(args: list[str]) -> None:
    from cli_support import imported_by

    code = (
        f"import sys\nsys.argv = ['deployer', *{args!r}]\nfrom deployer.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    modules = imported_by(code)
    assert "deployer.cli_monitoring" in modules
    heavy = ("scipy", "matplotlib", "pyarrow", "sklearn")
    assert [m for m in modules if m.split(".")[0] in heavy] == []


def test_redacted_features_are_not_captured(project: Path) -> None:
    captured_like_training(project, seed=14)
    for record in CapturingCloud.records:
        for row in record.rows or ():
            del row["n"]  # monitoring.capture.redact.drop
            row["color"] = "sha256:" + "0" * 64  # redact.hash
    found = json_of(drift(project, "-o", "json"))
    verdicts = {f["name"]: f["verdict"] for f in found["features"]}
    assert verdicts["n"] == verdicts["color"] == "not captured"
    assert verdicts["x"] == "ok"


@pytest.mark.parametrize("style", ["f{}", "{}"])
def test_rows_a_cloud_captured_by_position_take_the_models_input_names(
    project: Path, style: str
) -> None:
    """SageMaker and Vertex capture list rows without names (f0, f1 / Azure 0, 1): they
    are the model's input columns in order (the baseline's ``inputs``)."""
    captured_like_training(project, seed=12, shift=2.0)
    inputs = ["x", "n"]  # the model was fitted on a DataFrame of x and n
    CapturingCloud.records = [
        CapturedRecord(
            r.request_id,
            r.time,
            [{style.format(i): row[name] for i, name in enumerate(inputs)} for row in r.rows or ()],
            r.predictions,
        )
        for r in CapturingCloud.records
    ]
    run = drift(project, "-o", "json")
    assert run.exit_code == 1, run.stdout + run.stderr
    found = json_of(run)
    assert found["baseline"]["inputs"] == inputs
    verdicts = {f["name"]: f["verdict"] for f in found["features"]}
    assert verdicts == {"x": "drift", "n": "ok", "color": "not captured", "(prediction)": "drift"}
