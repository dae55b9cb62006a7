"""Train the iris classifier and export it to ONNX as model.onnx next to this file.

    python examples/onnx/export.py [OUTPUT]

The graph takes one float32 tensor of shape [None, 4] and, because ZipMap is disabled,
answers with two tensors: ``label`` (int64 class) and ``probabilities`` (float32, one
column per class). Each output name is a method a request can ask for.
"""

from __future__ import annotations

import sys
from pathlib import Path

from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

WIDTH = 4


def train() -> Pipeline:
    """The same pipeline as examples/iris/train.py."""
    features, labels = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(features, labels)
    return model


def export(output: Path, model: Pipeline | None = None) -> Path:
    """Convert ``model`` (trained here when omitted) and write it to ``output``."""
    model = train() if model is None else model
    onnx_model = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, WIDTH]))],
        options={"zipmap": False},
        target_opset=17,
    )
    output.write_bytes(onnx_model.SerializeToString())
    return output


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("model.onnx")
    print(f"wrote {export(target)}")
