"""``evaluation`` in deployer.lock, ``deployer lock`` keeping or dropping it, the chosen
threshold, and the report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluation_support import evaluate, evaluate_json, holdout_rows, write_formats, write_project

from deployer import Project
from deployer.lockfile import Lock


def lock_json(project: Path) -> dict:
    return json.loads((project / "deployer.lock").read_text())


def test_the_lock_records_the_evaluation_and_keeps_the_rest(binary_project: Path) -> None:
    project = Project.load(binary_project / "deployer.yaml")
    project.lock()
    before = lock_json(binary_project)
    found = evaluate_json(
        binary_project, "--data", str(binary_project / "holdout.csv"), "--label", "y"
    )
    after = lock_json(binary_project)
    assert {k: v for k, v in after.items() if k != "evaluation"} == {
        k: v for k, v in before.items() if k != "evaluation"
    }
    evaluation = after["evaluation"]
    assert evaluation["model_sha256"] == project.model_sha256() == found["model_sha256"]
    assert evaluation["data"] == {
        "source": str(binary_project / "holdout.csv"),
        "sha256": found["data"]["sha256"],
        "rows": 200,
        "label": "y",
    }
    import hashlib

    assert (
        found["data"]["sha256"]
        == hashlib.sha256((binary_project / "holdout.csv").read_bytes()).hexdigest()
    )
    assert evaluation["task"] == "classification"
    assert evaluation["metrics"] == pytest.approx(found["metrics"])
    assert set(evaluation["per_class"]) == {"0", "1"}
    assert evaluation["per_class"]["1"]["support"] == found["per_class"]["1"]["support"]
    assert evaluation["threshold"] is None
    assert evaluation["through"] == "in-process"
    assert evaluation["evaluated_at"].endswith("Z")
    assert Lock.read(binary_project).evaluation == evaluation  # readers' view


def test_no_record_leaves_the_lock_alone(binary_project: Path) -> None:
    evaluate_json(
        binary_project, "--data", str(binary_project / "holdout.csv"), "--label", "y", "--no-record"
    )
    assert not (binary_project / "deployer.lock").exists()


def test_deployer_lock_keeps_a_valid_evaluation_and_drops_a_stale_one(
    binary_project: Path,
) -> None:
    from sklearn.linear_model import LogisticRegression
    from typer.testing import CliRunner

    from deployer.cli import app

    evaluate_json(binary_project, "--data", str(binary_project / "holdout.csv"), "--label", "y")
    kept = lock_json(binary_project)["evaluation"]
    lock = ["lock", "-f", str(binary_project / "deployer.yaml")]
    assert CliRunner().invoke(app, lock).exit_code == 0
    assert lock_json(binary_project)["evaluation"] == kept  # same model: still valid
    write_project(binary_project, LogisticRegression(C=0.01).fit([[0, 0, 0], [1, 1, 1]], [0, 1]))
    assert CliRunner().invoke(app, lock).exit_code == 0
    rewritten = lock_json(binary_project)
    assert rewritten["evaluation"] is None  # another model: its metrics are gone
    assert rewritten["model_sha256"] != kept["model_sha256"]


def test_an_evaluation_of_a_changed_model_rewrites_the_lock(binary_project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    Project.load(binary_project / "deployer.yaml").lock()
    old = lock_json(binary_project)["model_sha256"]
    write_project(binary_project, LogisticRegression(C=0.5).fit([[0, 0, 0], [1, 1, 1]], [0, 1]))
    evaluate_json(binary_project, "--data", str(binary_project / "holdout.csv"), "--label", "y")
    written = lock_json(binary_project)
    assert written["model_sha256"] != old
    assert written["evaluation"]["model_sha256"] == written["model_sha256"]


def test_the_chosen_threshold_is_printed_and_recorded(binary_project: Path) -> None:
    data = str(binary_project / "holdout.parquet")
    found = evaluate_json(
        binary_project, "--data", data, "--label", "y", "--choose-threshold", "recall>=0.9"
    )
    threshold = found["threshold"]
    assert threshold["rule"] == "recall>=0.9" and threshold["positive_label"] == "1"
    assert threshold["recall"] >= 0.9
    assert set(threshold) == {"value", "rule", "positive_label", "precision", "recall", "f1"}
    assert lock_json(binary_project)["evaluation"]["threshold"] == threshold
    text = evaluate(
        binary_project,
        "--data",
        data,
        "--label",
        "y",
        "--choose-threshold",
        "f1=max",
        "--no-record",
    )
    assert text.exit_code == 0 and "(f1=max): precision" in " ".join(text.output.split())


def test_an_unreachable_threshold_exits_1_naming_the_best(binary_project: Path) -> None:
    import joblib

    Project.load(binary_project / "deployer.yaml").lock()
    features, labels = holdout_rows(seed=2)
    scores = joblib.load(binary_project / "model.joblib").predict_proba(features)[:, 1]
    labels[scores.argsort()[-3:]] = 0  # the three most confident positives are negatives
    write_formats(binary_project, features, labels)
    result = evaluate(
        binary_project,
        "--data",
        str(binary_project / "holdout.csv"),
        "--label",
        "y",
        "--choose-threshold",
        "precision>=0.99",
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "no threshold reaches precision>=0.99: the best reachable precision is" in output
    assert lock_json(binary_project)["evaluation"] is None  # nothing recorded


def test_choose_threshold_refuses_a_multiclass_model(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    features, labels = holdout_rows(seed=8)
    classes = labels + (features[:, 0] > 1)
    write_project(tmp_path, LogisticRegression().fit(features, classes))
    write_formats(tmp_path, features, classes)
    result = evaluate(
        tmp_path,
        "--data",
        str(tmp_path / "holdout.csv"),
        "--label",
        "y",
        "--choose-threshold",
        "f1=max",
    )
    assert result.exit_code == 2 and "binary classifier; this one has 3 classes" in result.output


def test_the_report_holds_png_charts_and_html(binary_project: Path) -> None:
    folder = binary_project / "report"
    found = evaluate_json(
        binary_project,
        "--data",
        str(binary_project / "holdout.csv"),
        "--label",
        "y",
        "--report",
        str(folder),
        "--no-record",
    )
    assert found["report"] == str(folder / "index.html")
    for name in ("confusion_matrix.png", "roc_curve.png", "pr_curve.png"):
        data = (folder / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
        assert len(data) > 5000
    page = (folder / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for name in ("confusion_matrix.png", "roc_curve.png", "pr_curve.png", "f1_macro", "roc_auc"):
        assert name in page
    from html.parser import HTMLParser

    images: list[str] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag == "img":
                images.append(dict(attrs)["src"])

    Images().feed(page)
    assert sorted(images) == ["confusion_matrix.png", "pr_curve.png", "roc_curve.png"]


def test_a_regression_report_has_no_charts(regression_project: Path) -> None:
    folder = regression_project / "report"
    evaluate_json(
        regression_project,
        "--data",
        str(regression_project / "holdout.csv"),
        "--label",
        "y",
        "--report",
        str(folder),
        "--no-record",
    )
    assert sorted(p.name for p in folder.iterdir()) == ["index.html"]
    assert "rmse" in (folder / "index.html").read_text()
