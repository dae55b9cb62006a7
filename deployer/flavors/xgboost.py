"""XGBoost boosters saved with ``Booster.save_model`` (JSON or UBJSON).

A pickled ``XGBClassifier``/``XGBRegressor`` is an sklearn-API estimator: use the
sklearn flavour for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel, Signature, TensorSpec, require

name = "xgboost"
suffixes = (".ubj", ".xgb", ".bst", ".json")
extra = "xgboost"


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Load the booster; width from ``num_features``, output shape from a probe predict."""
    if path is None:
        raise ValueError("the xgboost flavour needs model.path")
    xgb = require("xgboost", extra, name)
    booster = xgb.Booster()
    booster.load_model(path)
    booster.set_param({"nthread": int(options.get("threads") or 1)})
    width = options.get("width") or booster.num_features()
    probe = booster.inplace_predict(np.zeros((1, width), dtype=np.float32))
    shape = (-1,) if probe.ndim == 1 else (-1, int(probe.shape[1]))
    signature = Signature(
        width=width,
        datatype=options.get("datatype") or "FP32",
        outputs=(TensorSpec("predict", "FP32", shape),),
    )

    def predict(rows: np.ndarray, method: str, parameters: Mapping[str, Any]) -> Any:
        return booster.inplace_predict(rows)

    return LoadedModel(flavor=name, signature=signature, predict_fn=predict)
