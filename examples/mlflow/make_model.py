"""Save a small iris model in MLflow's format, in a folder next to this file.

python examples/mlflow/make_model.py [OUTPUT_FOLDER] [--kind pyfunc|sklearn]

``pyfunc`` (the default) wraps the classifier in a custom ``mlflow.pyfunc.PythonModel``
that answers the class name: deployer serves it through MLflow's own pyfunc loader, so
the image carries mlflow-skinny. ``sklearn`` saves it with ``mlflow.sklearn`` (pickle
format): deployer serves it with its own sklearn flavour and the image carries no MLflow.
Both record a signature (column names and types) and an input example. Nothing is
downloaded: the data set ships with scikit-learn.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
NAMES = np.array(["setosa", "versicolor", "virginica"])


class IrisNames(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """The classifier's answer as a class name."""

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return NAMES[self.classifier.predict(model_input[COLUMNS].to_numpy())]


def save(output: Path, kind: str = "pyfunc") -> Path:
    features, labels = load_iris(return_X_y=True)
    classifier = LogisticRegression(max_iter=500).fit(features, labels)
    frame = pd.DataFrame(features, columns=COLUMNS)
    example = frame.iloc[[0, 60, 120]]
    shutil.rmtree(output, ignore_errors=True)
    if kind == "sklearn":
        mlflow.sklearn.save_model(
            classifier,
            str(output),
            serialization_format="pickle",
            signature=infer_signature(frame, classifier.predict(features)),
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    else:
        model = IrisNames(classifier)
        mlflow.pyfunc.save_model(
            str(output),
            python_model=model,
            signature=infer_signature(frame, model.predict(None, frame)),
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", "pandas>=2,<4"],
        )
    return output


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=Path(__file__).with_name("model"))
    parser.add_argument("--kind", choices=("pyfunc", "sklearn"), default="pyfunc")
    arguments = parser.parse_args()
    print(f"wrote {save(arguments.output, arguments.kind)}")
