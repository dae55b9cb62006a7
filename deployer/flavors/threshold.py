"""A binary classifier's decision threshold, applied to ``predict`` in the image.

``deployer evaluate --choose-threshold`` records the threshold in deployer.lock; the image
carries it in its serving settings and the server wraps the loaded model with
:func:`apply_threshold`: ``predict`` answers the positive class (``classes[1]``) when
P(positive) >= the threshold, else the other class; ``predict_proba`` is unchanged.

Runs in the serving image: numpy and the stdlib only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel


class ThresholdError(ValueError):
    """The model cannot take a decision threshold (not a binary classifier with
    predict_proba and known classes), or the threshold itself is malformed."""


def binary_classes(model: LoadedModel) -> np.ndarray:
    """The two classes of a binary classifier with predict_proba; ThresholdError otherwise."""
    methods = model.signature.methods
    if model.signature.is_tensor or "predict" not in methods or "predict_proba" not in methods:
        raise ThresholdError(
            f"a decision threshold needs a binary classifier with predict and predict_proba; "
            f"this {model.flavor} model offers {', '.join(methods)}"
        )
    classes = model.extra.get("classes")
    if classes is None:
        raise ThresholdError(
            f"a decision threshold needs the model's classes; the {model.flavor} flavour "
            "does not record them"
        )
    labels = np.asarray(classes)
    if labels.ndim != 1 or len(labels) != 2:
        raise ThresholdError(
            f"a decision threshold needs a binary classifier; this model has {labels.size} classes"
        )
    return labels


def check_threshold(settings: Mapping[str, Any]) -> tuple[float, str | None]:
    """``{"value": 0..1, "positive_label": str}`` as (value, positive label)."""
    value = settings.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ThresholdError(f"value: {value!r} is not a number between 0 and 1")
    label = settings.get("positive_label")
    if label is not None and not isinstance(label, str):
        raise ThresholdError(f"positive_label: {label!r} is not a string")
    return float(value), label


def apply_threshold(model: LoadedModel, settings: Mapping[str, Any]) -> LoadedModel:
    """``model`` whose ``predict`` decides with the threshold in ``settings``."""
    value, positive = check_threshold(settings)
    classes = binary_classes(model)
    if positive is not None and str(classes[1]) != positive:
        raise ThresholdError(
            f"positive_label: {positive!r} is not this model's positive class "
            f"(classes {[str(c) for c in classes]}, the positive one second)"
        )
    inner = model.predict_fn

    def predict(rows: Any, method: str, parameters: Mapping[str, Any]) -> Any:
        if method != "predict":
            return inner(rows, method, parameters)
        proba = np.asarray(inner(rows, "predict_proba", parameters))
        return classes[(proba[:, 1] >= value).astype(np.intp)]

    extra = {**model.extra, "threshold": value}
    return dataclasses.replace(model, predict_fn=predict, extra=extra)
