"""The evaluation loop: batches of the data set through the scorer, then the metrics, the
trade-off and the chosen threshold, as one typed result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

import numpy as np

from deployer.errors import MissingDependencyError, UsageError
from deployer.evaluation import data as datasets
from deployer.evaluation import metrics as measure
from deployer.evaluation import thresholds
from deployer.evaluation.scoring import Scorer

EvaluationProgress = Callable[[int, "int | None"], None]
Progress = EvaluationProgress
TASKS = ("classification", "regression")
DEFAULT_BATCH = 65536
TARGET_BATCH = 1000  # rows per request to a target (bodies well under a cloud's ~6 MB)


@dataclass
class EvaluationResult:
    """What ``deployer evaluate`` measured. ``curve`` is the whole precision/recall
    trade-off (binary with probabilities), ``trade_off`` its ~10-row summary."""

    project: str
    task: str
    through: str
    model_sha256: str | None
    data: dict[str, Any]
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion_matrix: dict[str, Any] | None
    skipped: dict[str, str]
    positive_label: str | None
    curve: thresholds.Curve | None
    trade_off: list[dict[str, float]]
    threshold: dict[str, Any] | None
    evaluated_at: str
    seconds: float
    charts: dict[str, Any] = field(default_factory=dict)
    report: str | None = None
    recorded: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (the whole curve as lists)."""
        found = {f.name: getattr(self, f.name) for f in fields(self)}
        found["curve"] = self.curve.to_dict() if self.curve is not None else None
        return found

    def lock_entry(self) -> dict[str, Any]:
        """The ``evaluation`` object of deployer.lock (see docs/ARCHITECTURE.md)."""
        return {
            "model_sha256": self.model_sha256 or "",
            "data": {k: self.data[k] for k in ("source", "sha256", "rows", "label")},
            "task": self.task,
            "metrics": dict(self.metrics),
            "per_class": dict(self.per_class),
            "threshold": self.threshold,
            "through": self.through,
            "evaluated_at": self.evaluated_at,
        }


@dataclass(frozen=True)
class Options:
    """How to evaluate: the label column and the optional choices of the command line."""

    label: str
    format: str | None = None
    task: str | None = None
    positive: str | None = None
    rule: str | None = None
    batch_size: int = DEFAULT_BATCH


def _task(scorer: Scorer, schema: Any, options: Options) -> str:
    """``--task``, else classification for a model with classes or probabilities, or for a
    text/boolean label, or an integer label the model answers with integers."""
    import pyarrow as pa

    if options.task:
        if options.task not in TASKS:
            raise UsageError(f"--task {options.task!r}: expected classification or regression")
        return options.task
    if scorer.classes is not None or scorer.predict_proba is not None:
        return "classification"
    if scorer.predict_columns > 1:  # one score per class (an XGBoost multi:softprob booster)
        return "classification"
    kind = schema.field(options.label).type
    if pa.types.is_floating(kind):
        return "regression"
    if pa.types.is_integer(kind):
        return "regression" if scorer.predict_datatype.startswith("FP") else "classification"
    return "classification"


def _collect(
    scorer: Scorer,
    rows: Any,
    probabilities: bool,
    progress: Progress | None,
    total: int | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int]:
    """Labels, predictions and probabilities of every batch, concatenated."""
    truths: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    probas: list[np.ndarray] = []
    done = 0
    for features, labels in rows:
        truths.append(labels)
        if probabilities and scorer.predict_proba is not None:
            probas.append(scorer.predict_proba(features))
        if not (probabilities and scorer.labels_from_proba):
            preds.append(scorer.predict(features))
        done += len(labels)
        if progress is not None:
            progress(done, total)
    if not done:
        return np.empty(0), None, None, 0
    y_pred = np.concatenate(preds) if preds else None
    proba = np.concatenate(probas) if probas else None
    return np.concatenate(truths), y_pred, proba, done


def _require(module: str, package: str) -> None:
    """Import ``module`` or say which extra installs it (exit 3)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"deployer evaluate needs {package}, which is not installed",
            hint="pip install 'deployer[evaluate]'",
        ) from None


def evaluate(
    scorer: Scorer,
    source: str,
    options: Options,
    *,
    project: str = "",
    model_sha256: str | None = None,
    progress: Progress | None = None,
) -> EvaluationResult:
    """Run ``scorer`` over ``source`` and measure it (see ``deployer evaluate --help``)."""
    for module, package in (("pyarrow", "pyarrow"), ("sklearn", "scikit-learn")):
        _require(module, package)
    if options.batch_size < 1:
        raise UsageError(f"--batch-size {options.batch_size}: expected a positive number of rows")
    rule = thresholds.parse_rule(options.rule) if options.rule else None
    started = time.perf_counter()
    with datasets.open_data(source, options.format) as data:
        schema = datasets.schema_of(data)
        columns = datasets.choose_columns(
            data, schema, options.label, scorer.feature_names, scorer.width
        )
        task = _task(scorer, schema, options)
        if rule and (task != "classification" or scorer.predict_proba is None):
            raise UsageError(
                f"--choose-threshold needs a binary classifier with predict_proba; this model "
                f"is a {task} model{'' if scorer.predict_proba else ' without predict_proba'}"
            )
        rows = datasets.batches(data, columns, schema, options.batch_size, scorer.dtype)
        total = datasets.row_count(data)
        y_true, y_pred, proba, count = _collect(
            scorer, rows, task == "classification", progress, total
        )
        digest = data.sha256
    if not count:
        raise datasets.DataError(f"{source}: no rows to evaluate")
    described = {
        "source": source,
        "sha256": digest,
        "rows": count,
        "label": options.label,
        "format": data.format,
    }
    result = EvaluationResult(
        project=project,
        task=task,
        through=scorer.through,
        model_sha256=model_sha256,
        data=described,
        metrics={},
        per_class={},
        confusion_matrix=None,
        skipped={},
        positive_label=None,
        curve=None,
        trade_off=[],
        threshold=None,
        evaluated_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        seconds=0.0,
    )
    try:
        if task == "regression":
            assert y_pred is not None
            found = measure.regression(y_true, y_pred)
            result.metrics, result.skipped = found.metrics, found.skipped
        else:
            _classify(result, scorer, y_true, y_pred, proba, options, rule)
    except (ValueError, TypeError) as exc:  # labels and predictions that cannot be compared
        raise UsageError(
            f"{source}: cannot compare the label column {options.label!r} with the model's "
            f"{task} answers: {exc}",
            hint="check --label, and --task classification|regression",
        ) from None
    result.seconds = time.perf_counter() - started
    return result


def _classes(scorer: Scorer, y_true: np.ndarray, y_pred: np.ndarray | None, k: int | None) -> Any:
    """The model's classes, in the order of its probability columns."""
    if scorer.classes is not None:
        return scorer.classes
    seen = [y_true] if y_pred is None else [y_true, y_pred.astype(y_true.dtype, copy=False)]
    observed = np.unique(np.concatenate(seen))
    if k is None or len(observed) == k:
        return observed
    return np.arange(k)


def _classify(
    result: EvaluationResult,
    scorer: Scorer,
    y_true: np.ndarray,
    y_pred: np.ndarray | None,
    proba: np.ndarray | None,
    options: Options,
    rule: thresholds.Rule | None,
) -> None:
    """Classification metrics, the trade-off and the threshold into ``result``."""
    reason = "the model has no predict_proba"
    if proba is None and y_pred is not None and y_pred.ndim == 2 and y_pred.dtype.kind == "f":
        proba, y_pred = y_pred, None  # e.g. an XGBoost multi:softprob booster
        reason = ""
    if y_pred is not None and y_pred.ndim == 2 and y_pred.shape[1] == 1:
        y_pred = y_pred[:, 0]
    if y_pred is not None and y_pred.dtype.kind == "f" and not np.all(np.mod(y_pred, 1) == 0):
        raise UsageError(
            "the model's predict answers scores, not class labels; pass --task regression, "
            "or evaluate a model with predict_proba"
        )
    if proba is not None and proba.ndim == 1:
        proba = np.column_stack((1.0 - proba, proba))
    classes = _classes(scorer, y_true, y_pred, None if proba is None else proba.shape[1])
    if y_pred is None:
        assert proba is not None
        y_pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    y_true = measure.align_labels(y_true, np.asarray(classes))
    y_pred = measure.align_labels(y_pred, np.asarray(classes))
    labels = list(classes)
    positive = None
    if len(labels) == 2:
        positive = labels[thresholds.positive_index(labels, options.positive)]
        result.positive_label = measure.label_key(positive)
    found = measure.classification(y_true, y_pred, proba, classes, positive, reason or "")
    result.metrics, result.per_class = found.metrics, found.per_class
    result.confusion_matrix, result.skipped = found.confusion, found.skipped
    if proba is None or positive is None:
        if proba is not None:
            result.charts = measure.chart_curves(y_true, proba, labels, positive)
        if rule is not None:
            raise UsageError(
                f"--choose-threshold needs a binary classifier; this one has {len(labels)} classes"
            )
        return
    truth = y_true == positive
    scores = proba[:, labels.index(positive)]
    trade_off = thresholds.curve(truth.view(np.int8), scores)  # 0/1: sklearn's fast path
    result.charts = measure.chart_curves(
        y_true, proba, labels, positive, (trade_off.precision, trade_off.recall), found.roc
    )
    result.curve = trade_off
    result.trade_off = thresholds.summary(trade_off)
    if rule is not None:
        point = thresholds.choose(trade_off, rule)
        result.threshold = {
            "value": point["threshold"],
            "rule": rule.text,
            "positive_label": result.positive_label,
            **thresholds.measured_at(truth, scores, point["threshold"]),
        }
