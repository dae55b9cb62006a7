"""Train the benchmark's iris model in whichever Python runs this file.

    python benchmarks/train_iris.py --joblib OUT.joblib [--mlflow OUT_DIR]

serving.py runs it once with our venv's Python (the model our server loads) and once
with the peers venv's Python (the model MLflow and MLServer load), so each server
unpickles a model made by its own scikit-learn. Same data, same estimator, and the
solver is deterministic, so both models are the same classifier. Prints one JSON line
with the library versions and the prediction for the benchmark row.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

BENCH_ROW = [5.1, 3.5, 1.4, 0.2]


def train() -> Pipeline:
    """The estimator of examples/iris/train.py, fitted on the full iris data set."""
    features, labels = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(features, labels)
    return model


def save_mlflow(model: Pipeline, directory: Path) -> str:
    """Save as an MLflow model directory (replacing any old one); returns mlflow's version."""
    import mlflow
    import mlflow.sklearn

    if directory.exists():
        shutil.rmtree(directory)
    mlflow.sklearn.save_model(model, str(directory))
    return str(mlflow.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joblib", type=Path, required=True, help="write the model here")
    parser.add_argument("--mlflow", type=Path, help="also save an MLflow model directory here")
    args = parser.parse_args()

    model = train()
    args.joblib.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.joblib)
    facts = {
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
        "prediction": int(model.predict(np.array([BENCH_ROW]))[0]),
    }
    if args.mlflow:
        facts["mlflow"] = save_mlflow(model, args.mlflow)
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
