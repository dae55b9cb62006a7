"""scikit-learn estimators (and anything with their API) saved with joblib or pickle.

Loading a pickle runs code from the file: only load models you trust.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel, Signature, TensorSpec, oip_datatype, require

name = "sklearn"
suffixes = (".joblib", ".pkl", ".pickle")
extra = "sklearn"
METHODS = ("predict", "predict_proba")


def _read(path: str) -> Any:
    joblib = require("joblib", extra, name)
    return joblib.load(path)


def _outputs(model: Any) -> tuple[TensorSpec, ...]:
    classes = getattr(model, "classes_", None)
    if classes is not None:
        predict = TensorSpec("predict", oip_datatype(np.asarray(classes).dtype), (-1,))
    else:
        n_outputs = getattr(model, "n_outputs_", 1)
        shape = (-1,) if n_outputs in (None, 1) else (-1, int(n_outputs))
        predict = TensorSpec("predict", "FP64", shape)
    outputs = [predict]
    if hasattr(model, "predict_proba") and classes is not None:
        outputs.append(TensorSpec("predict_proba", "FP64", (-1, len(classes))))
    return tuple(outputs)


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Load the estimator and derive its signature from ``n_features_in_`` and ``classes_``."""
    if path is None:
        raise ValueError("the sklearn flavour needs model.path")
    model = _read(path)
    if not hasattr(model, "predict"):
        raise ValueError(
            f"the object in the file is a {type(model).__name__}, which has no predict()"
        )
    width = options.get("width") or getattr(model, "n_features_in_", None)
    datatype = options.get("datatype") or "FP64"
    signature = Signature(width=width, datatype=datatype, outputs=_outputs(model))
    bound = {method: getattr(model, method) for method in signature.methods}

    def predict(rows: np.ndarray, method: str, parameters: Mapping[str, Any]) -> Any:
        return bound[method](rows)

    extra: dict[str, Any] = {"model": model}
    classes = getattr(model, "classes_", None)
    if classes is not None:
        extra["classes"] = np.asarray(classes)
    return LoadedModel(flavor=name, signature=signature, predict_fn=predict, extra=extra)
