"""Tabular flavours other than sklearn: their outputs become labels and probabilities, and
the numbers match the same model's own predictions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_support import heavy_in, imported_by
from evaluation_support import evaluate_json, holdout_rows, write_formats


def project(folder: Path, model_file: str, flavor: str) -> Path:
    (folder / "deployer.yaml").write_text(
        f"name: flavoured\nmodel:\n  path: {model_file}\n  flavor: {flavor}\n"
    )
    return folder


def test_onnx_label_and_probabilities(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    features, labels = holdout_rows(seed=11)
    model = LogisticRegression().fit(features, labels)
    onnx = to_onnx(model, features[:1].astype(np.float32), options={"zipmap": False})
    (tmp_path / "model.onnx").write_bytes(onnx.SerializeToString())
    write_formats(project(tmp_path, "model.onnx", "onnx"), features, labels)
    found = evaluate_json(tmp_path, "--data", str(tmp_path / "holdout.parquet"), "--label", "y")
    expected = roc_auc_score(labels, model.predict_proba(features)[:, 1])
    assert found["metrics"]["roc_auc"] == pytest.approx(expected, abs=1e-4)
    assert found["metrics"]["accuracy"] == pytest.approx(
        float(np.mean(model.predict(features) == labels)), abs=0.01
    )


def test_lightgbm_binary_booster_labels_from_probabilities(tmp_path: Path) -> None:
    import lightgbm

    features, labels = holdout_rows(seed=12, rows=400)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(features, labels),
        num_boost_round=10,
    )
    booster.save_model(str(tmp_path / "model.txt"))
    write_formats(project(tmp_path, "model.txt", "lightgbm"), features, labels)
    found = evaluate_json(tmp_path, "--data", str(tmp_path / "holdout.csv"), "--label", "y")
    scores = booster.predict(features)
    assert found["task"] == "classification"
    assert found["metrics"]["accuracy"] == pytest.approx(float(np.mean((scores > 0.5) == labels)))
    assert found["confusion_matrix"]["labels"] == ["0", "1"]
    assert "roc_auc" in found["metrics"]


def test_xgboost_softprob_outputs_are_probabilities(tmp_path: Path) -> None:
    import xgboost

    features, labels = holdout_rows(seed=13, rows=400)
    classes = labels + (features[:, 0] > 1)
    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "nthread": 1},
        xgboost.DMatrix(features, classes),
        num_boost_round=5,
    )
    booster.save_model(str(tmp_path / "model.json"))
    write_formats(project(tmp_path, "model.json", "xgboost"), features, classes)
    found = evaluate_json(tmp_path, "--data", str(tmp_path / "holdout.csv"), "--label", "y")
    proba = booster.predict(xgboost.DMatrix(features))
    assert found["metrics"]["accuracy"] == pytest.approx(
        float(np.mean(proba.argmax(axis=1) == classes))
    )
    assert found["confusion_matrix"]["labels"] == ["0", "1", "2"]
    assert "log_loss" in found["metrics"]
    refused = evaluate_json(
        tmp_path,
        "--data",
        str(tmp_path / "holdout.csv"),
        "--label",
        "y",
        "--task",
        "regression",
        code=2,
    )
    assert "the model answers 3 values per row" in refused["error"]


def test_catboost_text_classes_in_the_model_order(tmp_path: Path) -> None:
    import catboost
    from sklearn.metrics import roc_auc_score

    features, labels = holdout_rows(seed=14, rows=300)
    names = np.where(labels == 1, "yes", "no")
    model = catboost.CatBoostClassifier(iterations=20, verbose=False, thread_count=1)
    model.fit(features, names)
    model.save_model(str(tmp_path / "model.cbm"))
    write_formats(project(tmp_path, "model.cbm", "catboost"), features, names)
    found = evaluate_json(tmp_path, "--data", str(tmp_path / "holdout.jsonl"), "--label", "y")
    column = list(model.classes_).index("yes")
    assert found["positive_label"] == "yes"
    assert found["metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(names == "yes", model.predict_proba(features)[:, column])
    )
    assert found["metrics"]["accuracy"] == pytest.approx(
        float(np.mean(model.predict(features).reshape(-1) == names))
    )


def test_a_python_predictor_labels_come_from_its_predict(tmp_path: Path) -> None:
    """examples/custom decides with its own threshold: its predict, not the argmax of
    predict_proba, gives the labels."""
    import shutil

    from sklearn.datasets import load_iris

    source = Path(__file__).resolve().parents[2] / "examples" / "custom"
    for name in ("deployer.yaml", "predictor.py", "weights.json"):
        shutil.copy(source / name, tmp_path / name)
    weights = json.loads((tmp_path / "weights.json").read_text())
    (tmp_path / "weights.json").write_text(json.dumps({**weights, "threshold": 0.9}))
    features, target = load_iris(return_X_y=True)
    labels = (target == 2).astype(int)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({**{f"x{i}": features[:, i] for i in range(4)}, "y": labels})
    pq.write_table(table, tmp_path / "iris.parquet")
    found = evaluate_json(tmp_path, "--data", str(tmp_path / "iris.parquet"), "--label", "y")
    scores = 1 / (1 + np.exp(-(features @ np.array(weights["weights"]) + weights["bias"])))
    assert found["metrics"]["accuracy"] == pytest.approx(float(np.mean((scores >= 0.9) == labels)))
    assert found["metrics"]["accuracy"] != pytest.approx(float(np.mean((scores >= 0.5) == labels)))


def test_evaluate_help_imports_no_framework() -> None:
    loaded = imported_by(
        "import sys\nsys.argv = ['deployer', 'evaluate', '--help']\n"
        "from deployer.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    assert heavy_in(loaded) == []
    assert not [m for m in loaded if m.split(".")[0] in ("pyarrow", "matplotlib", "sklearn")]


def test_the_json_document_has_stable_keys(binary_project: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "evaluate",
            "--data",
            "holdout.csv",
            "--label",
            "y",
            "-o",
            "json",
            "--no-record",
        ],
        cwd=binary_project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar, no messages: one JSON document
    document = json.loads(result.stdout)
    assert sorted(document) == sorted(
        [
            "ok",
            "project",
            "task",
            "through",
            "model_sha256",
            "data",
            "metrics",
            "per_class",
            "confusion_matrix",
            "skipped",
            "positive_label",
            "curve",
            "trade_off",
            "threshold",
            "evaluated_at",
            "seconds",
            "charts",
            "report",
            "recorded",
        ]
    )
    assert sorted(document["curve"]) == ["f1", "precision", "recall", "thresholds"]
