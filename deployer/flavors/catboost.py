"""CatBoost models saved with ``save_model`` in CatBoost's binary format (``.cbm``).

Classifiers (a classification loss) answer ``predict`` (the class labels) and
``predict_proba``; regressors answer ``predict``. Models with categorical or text
features are refused: deployer's rows are one numeric datatype.

This module shares its name with the library; it imports it absolutely
(``importlib.import_module("catboost")``), which never resolves to this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel, Signature, TensorSpec, oip_datatype, require

name = "catboost"
suffixes = (".cbm",)
extra = "catboost"
MAGIC = b"CBM1"
_CLASSIFICATION_LOSSES = frozenset({"Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll"})


def _loss(model: Any) -> str:
    """The loss function's name ("MultiClass:..." → MultiClass)."""
    loss = str(model.get_all_params().get("loss_function", ""))
    return loss.split(":", 1)[0]


def _read(path: str) -> tuple[Any, bool]:
    """The model, loaded into CatBoostClassifier or CatBoostRegressor after its loss says which."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"expected a CatBoost binary model (a file starting {MAGIC!r})")
    cb = require("catboost", extra, name)
    probe = cb.CatBoost()
    probe.load_model(path)
    classifier = _loss(probe) in _CLASSIFICATION_LOSSES
    model = cb.CatBoostClassifier() if classifier else cb.CatBoostRegressor()
    model.load_model(path)
    return model, classifier


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Load the model; width from its feature names, outputs from its loss and classes."""
    if path is None:
        raise ValueError("the catboost flavour needs model.path")
    model, classifier = _read(path)
    categorical = list(model.get_cat_feature_indices()) + list(model.get_text_feature_indices())
    if categorical:
        raise ValueError(
            f"the model has categorical or text features (columns {categorical}); "
            "deployer serves numeric features only"
        )
    threads = int(options.get("threads") or 1)
    width = options.get("width") or len(model.feature_names_)
    if classifier:
        classes = np.asarray(model.classes_)
        outputs: tuple[TensorSpec, ...] = (
            TensorSpec("predict", oip_datatype(classes.dtype), (-1,)),
            TensorSpec("predict_proba", "FP64", (-1, len(classes))),
        )
    else:
        probe = np.asarray(model.predict(np.zeros((1, width)), thread_count=threads))
        shape = (-1,) if probe.ndim == 1 else (-1, int(probe.shape[1]))
        outputs = (TensorSpec("predict", "FP64", shape),)
    signature = Signature(width=width, datatype=options.get("datatype") or "FP64", outputs=outputs)

    def predict(rows: np.ndarray, method: str, parameters: Mapping[str, Any]) -> Any:
        if method == "predict_proba":
            return model.predict_proba(rows, thread_count=threads)
        answer = np.asarray(model.predict(rows, thread_count=threads))
        return answer.reshape(-1) if classifier else answer

    extra: dict[str, Any] = {"model": model}
    if classifier:
        extra["classes"] = np.asarray(model.classes_)
    return LoadedModel(flavor=name, signature=signature, predict_fn=predict, extra=extra)
