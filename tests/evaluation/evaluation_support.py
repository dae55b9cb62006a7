"""Helpers of the evaluation tests: synthetic rows, the same rows in every format, a project
folder for a model, and ``deployer evaluate`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from deployer.cli import app

FEATURES = ("f0", "f1", "f2")


def holdout_rows(seed: int = 7, rows: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Features and 0/1 labels: positive when a noisy sum of the features is above zero."""
    generator = np.random.default_rng(seed)
    features = generator.normal(size=(rows, len(FEATURES)))
    labels = (features.sum(axis=1) + generator.normal(scale=0.8, size=rows) > 0).astype(int)
    return features, labels


def write_formats(
    folder: Path, features: np.ndarray, labels: Any, label: str = "y"
) -> dict[str, Path]:
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


def evaluate(project: Path, *args: str) -> Any:
    """``deployer evaluate -f PROJECT/deployer.yaml ARGS`` in this process."""
    return CliRunner().invoke(
        app, ["evaluate", "-f", str(project / "deployer.yaml"), *args], env={"COLUMNS": "200"}
    )


def evaluate_json(project: Path, *args: str, code: int = 0) -> dict[str, Any]:
    """The JSON document of ``evaluate ... -o json``, which exited with ``code``."""
    result = evaluate(project, *args, "-o", "json")
    assert result.exit_code == code, result.output
    return dict(json.loads(result.stdout))
