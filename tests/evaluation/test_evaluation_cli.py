"""``deployer evaluate`` through the command line: formats, errors (exit 2, named), JSON."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from evaluation_support import (
    FEATURES,
    evaluate,
    evaluate_json,
    holdout_rows,
    write_formats,
    write_project,
)


def test_csv_jsonl_and_parquet_give_the_same_result(binary_project: Path) -> None:
    found = {
        fmt: evaluate_json(
            binary_project,
            "--data",
            str(binary_project / f"holdout.{fmt}"),
            "--label",
            "y",
            "--no-record",
            "--batch-size",
            "37",
        )
        for fmt in ("csv", "jsonl", "parquet")
    }
    csv = found["csv"]
    assert csv["task"] == "classification" and csv["data"]["rows"] == 200
    assert set(csv["metrics"]) == {
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "roc_auc",
        "pr_auc",
        "log_loss",
    }
    assert csv["metrics"]["accuracy"] > 0.7
    for other in (found["jsonl"], found["parquet"]):
        assert other["metrics"] == pytest.approx(csv["metrics"])
        assert other["confusion_matrix"] == csv["confusion_matrix"]
        assert other["curve"]["thresholds"] == pytest.approx(csv["curve"]["thresholds"])


def test_the_metrics_equal_sklearn_on_the_whole_set(binary_project: Path) -> None:
    import joblib
    from sklearn.metrics import f1_score, roc_auc_score

    model = joblib.load(binary_project / "model.joblib")
    features, labels = holdout_rows(seed=2)
    found = evaluate_json(
        binary_project,
        "--data",
        str(binary_project / "holdout.parquet"),
        "--label",
        "y",
        "--no-record",
        "--batch-size",
        "16",
    )
    assert found["metrics"]["f1_macro"] == pytest.approx(
        f1_score(labels, model.predict(features), average="macro")
    )
    assert found["metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(labels, model.predict_proba(features)[:, 1])
    )
    assert found["positive_label"] == "1"
    assert len(found["trade_off"]) <= 11


def test_text_output_has_the_tables(binary_project: Path) -> None:
    result = evaluate(
        binary_project, "--data", str(binary_project / "holdout.csv"), "--label", "y", "--no-record"
    )
    assert result.exit_code == 0, result.output
    for title in ("metrics", "per class", "confusion matrix", "precision/recall trade-off"):
        assert title in result.stdout
    assert "roc_auc" in result.stdout


def test_regression(regression_project: Path) -> None:
    found = evaluate_json(
        regression_project, "--data", str(regression_project / "holdout.csv"), "--label", "y"
    )
    assert found["task"] == "regression"
    assert set(found["metrics"]) == {"mae", "mse", "rmse", "r2"}
    assert found["metrics"]["r2"] > 0.9
    assert found["metrics"]["rmse"] == pytest.approx(np.sqrt(found["metrics"]["mse"]))
    assert found["confusion_matrix"] is None and found["curve"] is None


def test_text_labels_and_a_model_without_predict_proba(tmp_path: Path) -> None:
    from sklearn.linear_model import RidgeClassifier

    features, labels = holdout_rows(seed=5)
    names = np.where(labels == 1, "spam", "ham")
    write_project(tmp_path, RidgeClassifier().fit(features, names))
    write_formats(tmp_path, features, names)
    found = evaluate_json(tmp_path, "--data", str(tmp_path / "holdout.csv"), "--label", "y")
    assert found["confusion_matrix"]["labels"] == ["ham", "spam"]
    assert "roc_auc" not in found["metrics"]
    assert set(found["skipped"]) == {"roc_auc", "pr_auc", "log_loss"}
    assert "predict_proba" in found["skipped"]["roc_auc"]
    result = evaluate(tmp_path, "--data", str(tmp_path / "holdout.csv"), "--label", "y")
    assert "skipped: the model has no predict_proba" in result.stdout


def test_feature_columns_by_the_model_names(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    features, labels = holdout_rows(seed=6)
    frame = pd.DataFrame(features, columns=list(FEATURES))
    write_project(tmp_path, LogisticRegression().fit(frame[["f2", "f0", "f1"]], labels))
    write_formats(tmp_path, features, labels)  # columns in another order: chosen by name
    found = evaluate_json(tmp_path, "--data", str(tmp_path / "holdout.parquet"), "--label", "y")
    assert found["metrics"]["accuracy"] > 0.7
    frame[["f0", "f1"]].assign(y=labels).to_csv(tmp_path / "short.csv", index=False)
    result = evaluate(tmp_path, "--data", str(tmp_path / "short.csv"), "--label", "y")
    assert result.exit_code == 2
    assert "missing feature column(s) f2" in result.output
    assert "short.csv" in result.output


def bad(project: Path, name: str, text: str, *args: str) -> str:
    (project / name).write_text(text)
    result = evaluate(project, "--data", str(project / name), "--label", "y", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_bad_inputs_are_named_with_exit_2(binary_project: Path) -> None:
    missing = evaluate(binary_project, "--data", str(binary_project / "nope.csv"), "--label", "y")
    assert missing.exit_code == 2
    assert "nope.csv: file not found; expected a csv file" in " ".join(missing.output.split())
    assert "no label column 'label'" in " ".join(
        evaluate(
            binary_project, "--data", str(binary_project / "holdout.csv"), "--label", "label"
        ).output.split()
    )
    text = bad(binary_project, "text.csv", "f0,f1,f2,y\n1,2,abc,1\n3,4,5,0\n")
    assert "text.csv" in text and "column 'f2' holds non-numeric values" in text
    later = "f0,f1,f2,y\n" + "1,2,3,1\n" * 2 + "1,2,x,0\n"
    text = bad(binary_project, "later.csv", later, "--format", "csv")
    assert "later.csv" in text
    text = bad(binary_project, "wide.csv", "f0,f1,f2,f3,y\n1,2,3,4,1\n")
    assert "4 feature column(s)" in text and "the model takes 3" in text
    text = bad(binary_project, "nolabel.csv", "f0,f1,f2,y\n1,2,3,1\n1,2,3,\n")
    assert "label column 'y' is empty in data row 2" in text
    text = bad(binary_project, "ragged.csv", "f0,f1,f2,y\n1,2,3,1\n1,2\n")
    assert "ragged.csv" in text and "cannot read it as csv" in text
    text = bad(binary_project, "rows.txt", "f0,f1,f2,y\n")
    assert "rows.txt" in text and "--format" in text
    text = bad(binary_project, "empty.csv", "f0,f1,f2,y\n")
    assert "no rows to evaluate" in text
    text = bad(binary_project, "bad.parquet", "garbage")
    assert "bad.parquet: cannot read it as parquet" in text
    text = bad(binary_project, "nothing.csv", "")
    assert "nothing.csv: cannot read it as csv: Empty CSV file" in text
    text = bad(binary_project, "bad.jsonl", '{"f0": 1, "f1": 2, "f2": "x", "y": 1}\n')
    assert "column 'f2' holds non-numeric values" in text


def test_a_fifo_is_refused_without_being_opened(binary_project: Path) -> None:
    os.mkfifo(binary_project / "pipe.csv")
    result = evaluate(binary_project, "--data", str(binary_project / "pipe.csv"), "--label", "y")
    assert result.exit_code == 2
    assert "pipe.csv: expected a regular file, got a FIFO" in " ".join(result.output.split())


def test_bad_options_exit_2(binary_project: Path, regression_project: Path) -> None:
    data = str(binary_project / "holdout.csv")
    assert (
        "expected classification or regression"
        in evaluate(binary_project, "--data", data, "--label", "y", "--task", "ranking").output
    )
    result = evaluate(binary_project, "--data", data, "--label", "y", "--positive", "7")
    assert result.exit_code == 2 and "expected one of the classes 0, 1" in result.output
    result = evaluate(
        regression_project,
        "--data",
        str(regression_project / "holdout.csv"),
        "--label",
        "y",
        "--choose-threshold",
        "f1=max",
    )
    assert result.exit_code == 2 and "binary classifier" in result.output


def test_a_uri_without_its_provider_is_named(binary_project: Path) -> None:
    result = evaluate(binary_project, "--data", "zz://bucket/holdout.csv", "--label", "y")
    assert result.exit_code == 2
    assert "zz://bucket/holdout.csv" in result.output


def test_errors_as_json_for_ci(binary_project: Path) -> None:
    found = evaluate_json(
        binary_project, "--data", str(binary_project / "holdout.csv"), "--label", "nope", code=2
    )
    assert found["ok"] is False and "no label column 'nope'" in found["error"]


def test_a_real_process_shows_no_traceback(binary_project: Path) -> None:
    (binary_project / "text.csv").write_text("f0,f1,f2,y\n1,2,abc,1\n")
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "evaluate", "--data", "text.csv", "--label", "y"],
        cwd=binary_project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "text.csv: column 'f2' holds non-numeric values" in result.stderr
