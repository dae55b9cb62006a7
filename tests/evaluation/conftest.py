"""Fixtures of the evaluation tests: a small binary classifier project and its holdout set
in every format, and a regression project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FEATURES = ("f0", "f1", "f2")


def holdout_rows(seed: int = 7, rows: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Features and 0/1 labels: positive when a noisy sum of the features is above zero."""
    generator = np.random.default_rng(seed)
    features = generator.normal(size=(rows, len(FEATURES)))
    labels = (features.sum(axis=1) + generator.normal(scale=0.8, size=rows) > 0).astype(int)
    return features, labels


def write_formats(folder: Path, features: np.ndarray, labels: Any, label: str = "y") -> dict[str, Path]:
    """The same rows as CSV, JSON Lines and Parquet in ``folder``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: features[:, i] for i, name in enumerate(FEATURES)}
    columns[label] = labels
    table = pa.table(columns)
    paths = {"csv": folder / "holdout.csv", "jsonl": folder / "holdout.jsonl"}
    paths["parquet"] = folder / "holdout.parquet"
    pq.write_table(table, paths["parquet"])
    lines = [f"{','.join(table.column_names)}"]
    records = table.to_pylist()
    lines += [",".join(str(r[c]) for c in table.column_names) for r in records]
    paths["csv"].write_text("\n".join(lines) + "\n")
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in records))
    return paths


def write_project(folder: Path, model: object, name: str = "evaluated") -> Path:
    import joblib

    joblib.dump(model, folder / "model.joblib")
    (folder / "deployer.yaml").write_text(f"name: {name}\nmodel:\n  path: model.joblib\n")
    return folder / "deployer.yaml"


@pytest.fixture
def binary_project(tmp_path: Path) -> Path:
    """A logistic regression on f0..f2 (trained without column names) and its holdout files."""
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "binary"
    folder.mkdir()
    features, labels = holdout_rows(seed=1, rows=300)
    write_project(folder, LogisticRegression().fit(features, labels))
    held_features, held_labels = holdout_rows(seed=2)
    write_formats(folder, held_features, held_labels)
    return folder


@pytest.fixture
def regression_project(tmp_path: Path) -> Path:
    from sklearn.linear_model import LinearRegression

    folder = tmp_path / "regression"
    folder.mkdir()
    features, _ = holdout_rows(seed=3)
    target = features @ np.array([1.0, -2.0, 0.5]) + 0.1
    write_project(folder, LinearRegression().fit(features, target), name="regressor")
    noisy = target + np.random.default_rng(4).normal(scale=0.1, size=len(target))
    write_formats(folder, features, noisy)
    return folder
