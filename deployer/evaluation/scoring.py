"""The model being evaluated, as two calls on a batch of rows: labels (or values) and,
when it has them, class probabilities. In this process (``LoadedModel``) or through a
running target's real invoke path (``Project.predict``)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deployer.errors import DeployerError, UsageError
from deployer.flavors.base import LoadedModel

PREDICT_NAMES = ("predict", "label", "output_label")
PROBA_NAMES = ("predict_proba", "probabilities", "output_probability")


@dataclass
class Scorer:
    """What ``run`` calls per batch. ``classes`` are the model's own (``classes_``) when it
    says; ``labels_from_proba``: its predict answers scores, so labels are the argmax of the
    probabilities (LightGBM boosters)."""

    predict: Callable[[np.ndarray], np.ndarray]
    predict_proba: Callable[[np.ndarray], np.ndarray] | None
    classes: np.ndarray | None
    feature_names: list[str] | None
    width: int | None
    dtype: np.dtype[Any]
    labels_from_proba: bool = False
    through: str = "in-process"
    predict_datatype: str = "FP64"
    predict_columns: int = 1  # predict's answer per row: several for class scores


def _methods(loaded: LoadedModel) -> tuple[str, str | None]:
    """The output answering labels/values and the one answering probabilities (or None)."""
    signature = loaded.signature
    if signature.is_tensor:
        raise UsageError(
            f"the {loaded.flavor} model takes named tensors; deployer evaluate takes tabular "
            "models (one 2-D input of features)"
        )
    methods = signature.methods
    predict = next((m for m in PREDICT_NAMES if m in methods), methods[0])
    proba = next((m for m in PROBA_NAMES if m in methods), None)
    return predict, proba


def _facts(loaded: LoadedModel) -> tuple[np.ndarray | None, list[str] | None]:
    """The model's classes and feature names, when the estimator carries them."""
    model = loaded.extra.get("model")
    classes = getattr(model, "classes_", None)
    names = getattr(model, "feature_names_in_", None)
    return (
        None if classes is None else np.asarray(classes),
        None if names is None else [str(n) for n in names],
    )


def _scores_labels(loaded: LoadedModel, predict: str, proba: str | None, known: bool) -> bool:
    """Whether predict answers the probabilities again rather than labels (a LightGBM
    booster's predict): then the labels are the argmax of predict_proba, one call."""
    return loaded.flavor == "lightgbm" and proba is not None and not known


def _columns(loaded: LoadedModel, method: str) -> int:
    """How many values ``method`` answers per row (-1, an unknown width, counts as one)."""
    shape = loaded.signature.output(method).shape
    return shape[1] if len(shape) == 2 and shape[1] > 1 else 1


def in_process(loaded: LoadedModel) -> Scorer:
    """The loaded model, called directly."""
    names = _facts(loaded)[1]
    empty: dict[str, Any] = {}

    def call(method: str) -> Callable[[np.ndarray], np.ndarray]:
        def answer(rows: np.ndarray) -> np.ndarray:
            if names is None:
                return np.asarray(loaded.predict(rows, method, empty))
            with warnings.catch_warnings():  # columns were chosen by the model's names
                warnings.filterwarnings("ignore", "X does not have valid feature names")
                return np.asarray(loaded.predict(rows, method, empty))

        return answer

    return _scorer(loaded, call, "in-process")


def through_target(loaded: LoadedModel, target: str, send: Callable[[bytes], Any]) -> Scorer:
    """The target's deployed model, one JSON request per batch and output; ``send`` is
    ``Project.predict`` bound to the target. ``loaded`` (the project's model) says which
    outputs exist and the classes."""

    def call(method: str) -> Callable[[np.ndarray], np.ndarray]:
        def answer(rows: np.ndarray) -> np.ndarray:
            body = json.dumps({"instances": rows.tolist(), "parameters": {"method": method}})
            result = send(body.encode())
            if not 200 <= result.status < 300:
                text = result.body[:300].decode("utf-8", "replace")
                raise DeployerError(f"{target} answered {result.status} to {method}: {text}")
            try:
                return np.asarray(json.loads(result.body)["predictions"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DeployerError(
                    f"{target}: expected a JSON body with 'predictions', got {exc}"
                ) from None

        return answer

    return _scorer(loaded, call, target)


def _scorer(
    loaded: LoadedModel, call: Callable[[str], Callable[[np.ndarray], np.ndarray]], through: str
) -> Scorer:
    """A Scorer whose methods are ``call(method)``, with what ``loaded`` says of its outputs."""
    predict, proba = _methods(loaded)
    classes, names = _facts(loaded)
    return Scorer(
        predict=call(predict),
        predict_proba=call(proba) if proba else None,
        classes=classes,
        feature_names=names,
        width=loaded.signature.width,
        dtype=loaded.signature.numpy_dtype,
        labels_from_proba=_scores_labels(loaded, predict, proba, classes is not None),
        through=through,
        predict_datatype=loaded.signature.output(predict).datatype,
        predict_columns=_columns(loaded, predict),
    )
