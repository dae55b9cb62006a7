"""Classification and regression metrics, every number from ``sklearn.metrics``.

Classification: accuracy; precision, recall and F1 per class, macro and weighted;
ROC-AUC (binary, or one-vs-rest macro); PR-AUC (average precision: binary, or macro
one-vs-rest); log loss; the confusion matrix. The three that need probabilities are
skipped, with the reason, for a model without ``predict_proba``. Regression: MAE, MSE,
RMSE, R².
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deployer.errors import UsageError

PROBABILITY_METRICS = ("roc_auc", "pr_auc", "log_loss")


@dataclass
class Metrics:
    """What was measured: the headline numbers, per class, the confusion matrix and what
    was skipped (metric → why)."""

    task: str
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, Any] | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    roc: tuple[np.ndarray, np.ndarray] | None = None  # binary: (fpr, tpr) of roc_curve


def _number(value: Any) -> float:
    result = float(value)
    return result if math.isfinite(result) else float("nan")


def _defined(result: Metrics) -> Metrics:
    """``result`` without the metrics the data leaves undefined (NaN, e.g. R² of one row),
    which move to ``skipped``: the JSON and the lock hold numbers only."""
    for name in [n for n, v in result.metrics.items() if math.isnan(v)]:
        del result.metrics[name]
        result.skipped[name] = "undefined on this data"
    return result


def label_key(value: Any) -> str:
    """A class label as the string the lock and JSON use (1 → "1", "setosa" → "setosa")."""
    if isinstance(value, (np.floating, float)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def align_labels(y_true: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``y_true`` in the kind of ``reference`` (the model's classes or predictions): whole
    floats as integers for an integer model, numbers as text for a text model."""
    whole = y_true.dtype.kind == "f" and bool(np.all(np.mod(y_true, 1) == 0))
    if whole and reference.dtype.kind in "iu":
        return y_true.astype(reference.dtype)
    if reference.dtype.kind in "USO" and y_true.dtype.kind in "iufb":
        return np.array([label_key(v) for v in y_true], dtype=object)
    return y_true


def encode(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each value's index in ``classes`` (-1: not a class) as small integers: sklearn's
    label checks count those several times faster than int64 or text, same results."""
    order = np.argsort(classes, kind="stable")
    ordered = np.asarray(classes)[order]
    at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    codes = np.where(ordered[at] == values, order[at], -1)
    return codes.astype(np.int16 if len(classes) < 2**15 else np.int32)


def classification(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: np.ndarray,
    positive: Any = None,
    no_proba_reason: str = "the model has no predict_proba",
) -> Metrics:
    """Every classification metric over ``classes`` (the order of ``proba``'s columns);
    ``positive`` is the class whose probability the binary ROC/PR use. The labels are
    compared as their indices in ``classes`` (see ``encode``)."""
    from sklearn import metrics as skm

    labels = list(classes)
    codes = list(range(len(labels)))
    truth, guess = encode(y_true, np.asarray(classes)), encode(y_pred, np.asarray(classes))
    values: dict[str, float] = {"accuracy": _number(skm.accuracy_score(truth, guess))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for average in ("macro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(
                truth, guess, labels=codes, average=average, zero_division=0
            )
            values[f"precision_{average}"] = _number(p)
            values[f"recall_{average}"] = _number(r)
            values[f"f1_{average}"] = _number(f)
        p, r, f, s = skm.precision_recall_fscore_support(
            truth, guess, labels=codes, average=None, zero_division=0
        )
    per_class = {
        label_key(c): {
            "precision": _number(p[i]),
            "recall": _number(r[i]),
            "f1": _number(f[i]),
            "support": int(s[i]),
        }
        for i, c in enumerate(labels)
    }
    matrix = skm.confusion_matrix(truth, guess, labels=codes)
    confusion = {"labels": [label_key(c) for c in labels], "matrix": matrix.tolist()}
    result = Metrics("classification", values, per_class, confusion)
    if proba is None:
        result.skipped = {name: no_proba_reason for name in PROBABILITY_METRICS}
        return _defined(result)
    index = labels.index(positive if positive is not None else labels[-1])
    _probability_metrics(result, truth, proba, index)
    if "log_loss" in result.skipped:
        unknown = np.unique(y_true[truth < 0]).tolist()
        shown = ", ".join(sorted(label_key(v) for v in unknown))
        result.skipped["log_loss"] = f"label(s) {shown} are not classes of the model"
    return _defined(result)


def _probability_metrics(result: Metrics, truth: np.ndarray, proba: np.ndarray, index: int) -> None:
    """ROC-AUC, PR-AUC and log loss into ``result`` (or into its skipped, with why), from
    ``truth`` (the labels' indices in the classes, -1 for none) and ``index`` (the
    positive class of a binary model)."""
    from sklearn import metrics as skm
    from sklearn.preprocessing import label_binarize

    k = proba.shape[1]
    present = set(np.unique(truth).tolist())
    if len(present - {-1}) < 2:
        for name in ("roc_auc", "pr_auc"):
            result.skipped[name] = "the labels hold only one class"
    elif k == 2:
        positive = (truth == index).view(np.int8)
        fpr, tpr, _ = skm.roc_curve(positive, proba[:, index])  # also drawn: one sort, not two
        result.roc = (fpr, tpr)
        result.metrics["roc_auc"] = _number(skm.auc(fpr, tpr))
        result.metrics["pr_auc"] = _number(skm.average_precision_score(positive, proba[:, index]))
    else:
        missing = [name for i, name in enumerate(result.per_class) if i not in present]
        if missing or -1 in present:
            reason = (
                f"class(es) {', '.join(missing)} never occur in the labels"
                if missing
                else "some labels are not classes of the model"
            )
            result.skipped["roc_auc"] = result.skipped["pr_auc"] = reason
        else:
            result.metrics["roc_auc"] = _number(
                skm.roc_auc_score(
                    truth, proba, multi_class="ovr", average="macro", labels=list(range(k))
                )
            )
            onehot = label_binarize(truth, classes=list(range(k)))
            result.metrics["pr_auc"] = _number(
                skm.average_precision_score(onehot, proba, average="macro")
            )
    if -1 in present:
        result.skipped["log_loss"] = "labels that are not classes of the model"
    else:
        result.metrics["log_loss"] = _number(skm.log_loss(truth, proba, labels=list(range(k))))


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> Metrics:
    """MAE, MSE, RMSE and R² of ``y_pred`` against ``y_true``."""
    from sklearn import metrics as skm

    truth = y_true.astype(np.float64)
    guess = np.asarray(y_pred, dtype=np.float64).reshape(len(truth), -1)
    if guess.shape[1] != 1:
        raise UsageError(
            f"the model answers {guess.shape[1]} values per row; regression metrics compare "
            "one value with the label (pass --task classification for class scores)"
        )
    guess = guess[:, 0]
    mse = _number(skm.mean_squared_error(truth, guess))
    values = {
        "mae": _number(skm.mean_absolute_error(truth, guess)),
        "mse": mse,
        "rmse": _number(skm.root_mean_squared_error(truth, guess)),
        "r2": _number(skm.r2_score(truth, guess)),
    }
    return _defined(Metrics("regression", values))


def _thin(*arrays: np.ndarray, points: int = 1000) -> list[list[float]]:
    """At most ``points`` evenly spaced entries of each array (for drawing)."""
    size = len(arrays[0])
    keep = np.unique(np.linspace(0, max(size - 1, 0), min(size, points)).astype(int))
    return [np.asarray(a)[keep].astype(float).tolist() for a in arrays]


def chart_curves(
    y_true: np.ndarray,
    proba: np.ndarray,
    labels: list[Any],
    positive: Any,
    binary_pr: tuple[np.ndarray, np.ndarray] | None = None,
    binary_roc: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """ROC and PR curves to draw (``sklearn.metrics.roc_curve``/``precision_recall_curve``),
    thinned to at most 1000 points each: the positive class of a binary model, else each
    class against the rest (classes absent from the labels are left out). ``binary_pr``,
    ``binary_roc``: a binary model's curves when they were computed already."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    shown = [positive] if len(labels) == 2 else labels
    roc: dict[str, dict[str, list[float]]] = {}
    pr: dict[str, dict[str, list[float]]] = {}
    for label in shown:
        truth = y_true == label
        if truth.all() or not truth.any():
            continue
        scores = proba[:, labels.index(label)]
        binary = len(labels) == 2
        fpr, tpr = binary_roc if binary and binary_roc else roc_curve(truth, scores)[:2]
        if binary and binary_pr is not None:
            precision, recall = binary_pr
        else:
            precision, recall, _ = precision_recall_curve(truth, scores)
        fpr_l, tpr_l = _thin(fpr, tpr)
        precision_l, recall_l = _thin(precision, recall)
        roc[label_key(label)] = {"fpr": fpr_l, "tpr": tpr_l}
        pr[label_key(label)] = {"precision": precision_l, "recall": recall_l}
    return {"roc": roc, "pr": pr}
