"""``deployer evaluate`` in process against a bare predict loop over the same batches.

    python benchmarks/evaluate.py [--rows 1000000] [--features 8] [--batch-size 65536]
                                  [--rounds 3] [--threads 1] [--json OUT]

Writes, under benchmarks/.work/evaluate/: a scikit-learn HistGradientBoostingClassifier
(binary, trained on 20,000 synthetic rows of ``make_classification``) with a
deployer.yaml, and ROWS held-out rows of the same generator as Parquet and CSV. Then, for
each file and round, times:

- bare: ``model.predict(X)`` and ``model.predict_proba(X)`` over the batches, the batches
  read from the file into numpy beforehand (not timed);
- evaluate: ``Project.evaluate(file, "y", record=False)``, end to end: reading and
  hashing the file, both calls per batch, every metric and the precision/recall curve.

Prints one JSON document: rows/s of each (best of the rounds, wall clock) and evaluate /
bare (``ratio``); the same from CPU seconds of this process (``cpu_ratio``), which other
processes on a shared machine disturb far less. The issue's bar is a ratio of at least
0.80. ``--threads`` caps the model's OpenMP/BLAS threads (threadpoolctl) in both loops
alike, so CPU time is the time of one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

WORK = Path(__file__).resolve().parent / ".work" / "evaluate"
TRAIN_ROWS = 20_000


def write_inputs(folder: Path, rows: int, features: int) -> dict[str, Path]:
    """The model, deployer.yaml, holdout.parquet and holdout.csv in ``folder``."""
    import joblib
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    folder.mkdir(parents=True, exist_ok=True)
    x, y = make_classification(
        n_samples=TRAIN_ROWS + rows,
        n_features=features,
        n_informative=max(2, features // 2),
        random_state=0,
    )
    x = np.round(x, 4)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    model.fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS])
    joblib.dump(model, folder / "model.joblib")
    (folder / "deployer.yaml").write_text("name: evaluate-bench\nmodel:\n  path: model.joblib\n")
    columns = {f"f{i}": x[TRAIN_ROWS:, i] for i in range(features)}
    columns["y"] = y[TRAIN_ROWS:]
    table = pa.table(columns)
    paths = {"parquet": folder / "holdout.parquet", "csv": folder / "holdout.csv"}
    pq.write_table(table, paths["parquet"])
    pcsv.write_csv(table, paths["csv"])
    return paths


def read_batches(path: Path, size: int, width: int) -> list[np.ndarray]:
    """The feature batches of ``path`` as evaluate reads them (for the bare loop)."""
    from deployer.evaluation import data as datasets

    with datasets.open_data(str(path)) as found:
        schema = datasets.schema_of(found)
        columns = datasets.choose_columns(found, schema, "y", None, width)
        rows = datasets.batches(found, columns, schema, size, np.dtype(np.float64))
        return [features for features, _ in rows]


def bare(model: Any, batches: list[np.ndarray]) -> tuple[float, float]:
    """Wall and CPU seconds of predict + predict_proba over ``batches``."""
    started, cpu = time.perf_counter(), time.process_time()
    for features in batches:
        model.predict(features)
        model.predict_proba(features)
    return time.perf_counter() - started, time.process_time() - cpu


def through_evaluate(project: Any, path: Path, size: int) -> tuple[float, float, dict[str, Any]]:
    """Wall and CPU seconds of ``Project.evaluate`` over ``path``, and its metrics."""
    started, cpu = time.perf_counter(), time.process_time()
    result = project.evaluate(str(path), "y", batch_size=size, record=False)
    return time.perf_counter() - started, time.process_time() - cpu, result.metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=65536)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import joblib
    import sklearn
    from threadpoolctl import threadpool_limits

    from deployer import Project

    paths = write_inputs(WORK, args.rows, args.features)
    model = joblib.load(WORK / "model.joblib")
    project = Project.load(WORK / "deployer.yaml")
    report: dict[str, Any] = {
        "rows": args.rows,
        "features": args.features,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "threads": args.threads,
        "model": "HistGradientBoostingClassifier(max_iter=100), binary",
        "sklearn": sklearn.__version__,
        "files": {},
    }
    with threadpool_limits(args.threads):
        for fmt, path in paths.items():
            batches = read_batches(path, args.batch_size, args.features)
            bare_times, evaluate_times, bare_cpu, evaluate_cpu = [], [], [], []
            metrics: dict[str, Any] = {}
            for _ in range(args.rounds):
                wall, cpu = bare(model, batches)
                bare_times.append(wall)
                bare_cpu.append(cpu)
                wall, cpu, metrics = through_evaluate(project, path, args.batch_size)
                evaluate_times.append(wall)
                evaluate_cpu.append(cpu)
            bare_rate = args.rows / min(bare_times)
            evaluate_rate = args.rows / min(evaluate_times)
            bare_cpu_rate = args.rows / min(bare_cpu)
            evaluate_cpu_rate = args.rows / min(evaluate_cpu)
            report["files"][fmt] = {
                "bytes": path.stat().st_size,
                "bare_seconds": bare_times,
                "evaluate_seconds": evaluate_times,
                "bare_cpu_seconds": bare_cpu,
                "evaluate_cpu_seconds": evaluate_cpu,
                "bare_rows_per_s": round(bare_rate),
                "evaluate_rows_per_s": round(evaluate_rate),
                "ratio": round(evaluate_rate / bare_rate, 3),
                "cpu_ratio": round(evaluate_cpu_rate / bare_cpu_rate, 3),
                "accuracy": metrics.get("accuracy"),
                "roc_auc": metrics.get("roc_auc"),
            }
            del batches
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if all(f["cpu_ratio"] >= 0.8 for f in report["files"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
