"""LightGBM boosters saved with ``Booster.save_model`` (the text model format).

The file is recognised by its content, not its name (``save_model`` writes any suffix):
see ``is_lightgbm_text``. A pickled ``LGBMClassifier``/``LGBMRegressor`` is an
sklearn-API estimator: use the sklearn flavour for it.

This module shares its name with the library; it imports it absolutely
(``importlib.import_module("lightgbm")``), which never resolves to this file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel, Signature, TensorSpec, require

name = "lightgbm"
suffixes: tuple[str, ...] = ()  # detected by content (is_lightgbm_text)
extra = "lightgbm"
# Objectives whose Booster.predict answers class probabilities.
_BINARY = ("binary", "cross_entropy", "xentropy")
_MULTICLASS = ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr")
_HEAD_BYTES = 4096


def is_lightgbm_text(path: str) -> bool:
    """A LightGBM text model: first line ``tree``, then ``version=v...`` and ``num_class=``."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # never open a FIFO or a device
            return False
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError:
        return False
    lines = head.splitlines()
    if not lines or lines[0].strip() != b"tree":
        return False
    keys = {line.split(b"=", 1)[0] for line in lines[1:16] if b"=" in line}
    version = any(line.startswith(b"version=v") for line in lines[1:16])
    return version and b"num_class" in keys


def _objective(booster: Any) -> str:
    """The objective's name as the model file records it ("multiclass num_class:3" → multiclass)."""
    objective = str(booster.dump_model(num_iteration=0).get("objective", ""))
    return objective.split(" ", 1)[0]


def _outputs(objective: str, classes: int) -> tuple[TensorSpec, ...]:
    """``predict`` as Booster.predict answers it; ``predict_proba`` for classifiers."""
    if objective in _MULTICLASS:
        return (
            TensorSpec("predict", "FP64", (-1, classes)),
            TensorSpec("predict_proba", "FP64", (-1, classes)),
        )
    if objective in _BINARY:
        return (TensorSpec("predict", "FP64", (-1,)), TensorSpec("predict_proba", "FP64", (-1, 2)))
    shape = (-1,) if classes <= 1 else (-1, classes)
    return (TensorSpec("predict", "FP64", shape),)


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Load the booster; width from ``num_feature()``, outputs from its objective."""
    if path is None:
        raise ValueError("the lightgbm flavour needs model.path")
    if not is_lightgbm_text(path):
        raise ValueError(
            "expected a LightGBM text model (Booster.save_model: a first line 'tree', "
            "then 'version=v4' and 'num_class=' lines)"
        )
    lgb = require("lightgbm", extra, name)
    booster = lgb.Booster(model_file=path)
    threads = int(options.get("threads") or 1)
    objective = _objective(booster)
    classes = int(booster.num_model_per_iteration())
    signature = Signature(
        width=options.get("width") or int(booster.num_feature()),
        datatype=options.get("datatype") or "FP64",
        outputs=_outputs(objective, classes),
    )
    binary = objective in _BINARY

    def predict(rows: np.ndarray, method: str, parameters: Mapping[str, Any]) -> Any:
        answer = booster.predict(rows, num_threads=threads)
        if method == "predict_proba" and binary:
            return np.column_stack((1.0 - answer, answer))
        return answer

    return LoadedModel(
        flavor=name, signature=signature, predict_fn=predict, extra={"objective": objective}
    )
