"""A custom predictor: a logistic "is it a virginica?" model whose weights live in JSON.

deployer imports it as ``predictor:Predictor`` (with this folder in ``code_paths``),
instantiates it with no arguments, calls ``load(model.path)`` once, then
``predict(rows, parameters)`` for each request or micro-batch. Only numpy is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

WEIGHTS_FILE = "weights.json"


class Predictor:
    """P(virginica) = sigmoid(rows @ weights + bias); the label is P >= threshold."""

    # Four float features in; "predict" (the default) answers labels 0.0/1.0,
    # "predict_proba" the probability. Both are float64 tensors.
    signature: ClassVar[dict[str, Any]] = {
        "width": 4,
        "datatype": "FP64",
        "outputs": ["predict", "predict_proba"],
    }
    # Rows are independent, so the server may run concurrent requests as one batch.
    batchable = True

    def __init__(self) -> None:
        self.weights = np.zeros(4)
        self.bias = 0.0
        self.threshold = 0.5

    def load(self, path: str | None) -> None:
        """Read the weights from ``path``: the JSON file, or a folder holding weights.json."""
        if path is None:
            raise ValueError(f"set model.path to {WEIGHTS_FILE} or the folder holding it")
        file = Path(path)
        if file.is_dir():
            file = file / WEIGHTS_FILE
        spec = json.loads(file.read_text(encoding="utf-8"))
        weights = np.asarray(spec["weights"], dtype=np.float64)
        if weights.shape != (self.signature["width"],):
            raise ValueError(f"{file}: expected 4 weights, got {weights.shape}")
        self.weights = weights
        self.bias = float(spec["bias"])
        self.threshold = float(spec.get("threshold", 0.5))

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """The probability that each row is a virginica."""
        return 1.0 / (1.0 + np.exp(-(rows @ self.weights + self.bias)))

    def predict(self, rows: np.ndarray, parameters: dict[str, Any]) -> np.ndarray:
        """``parameters["method"]`` picks the output; ``parameters["threshold"]`` overrides it."""
        proba = self.predict_proba(rows)
        if parameters.get("method") == "predict_proba":
            return proba
        threshold = float(parameters.get("threshold", self.threshold))
        return (proba >= threshold).astype(np.float64)
