"""``deployer baseline``: each feature's distribution and the model's predictions' on the
training data, as deployer.lock's ``baseline`` (format: ``deployer.serving.baseline_bins``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np

from deployer.errors import UsageError
from deployer.evaluation import data as datasets
from deployer.evaluation.scoring import Scorer
from deployer.monitoring.profile import describe
from deployer.monitoring.table import Column, Progress, read_columns
from deployer.serving.baseline_bins import Distribution

PREDICT_BATCH = 65536


def build_baseline(
    source: str,
    scorer: Scorer | None,
    *,
    label: str | None = None,
    data_format: str | None = None,
    model_sha256: str = "",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The ``baseline`` entry of ``source``: every column but ``label`` is a feature; the
    predictions are ``scorer``'s on the model's feature columns (none without a scorer)."""
    with datasets.open_data(source, data_format) as data:
        columns = read_columns(data, progress)
        digest = data.sha256
    names = [c.name for c in columns]
    if label is not None and label not in names:
        raise datasets.DataError(
            f"{source}: no label column {label!r}; the columns are {', '.join(names)}"
        )
    features = [c for c in columns if c.name != label]
    if not features:
        raise datasets.DataError(f"{source}: no feature columns besides the label {label!r}")
    rows = len(columns[0].values)
    entry: dict[str, Any] = {
        "model_sha256": model_sha256,
        "data": {"source": source, "sha256": digest, "rows": rows, "label": label},
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "features": {c.name: describe(c.values, c.kind).to_dict() for c in features},
        "prediction": None,
        # the model's input columns in its order: names for the positional rows a cloud
        # captures (f0, f1, ... or 0, 1, ...)
        "inputs": [c.name for c in features],
    }
    if scorer is not None:
        chosen = _model_columns(source, scorer, features)
        entry["inputs"] = [c.name for c in chosen]
        entry["prediction"] = _predictions(source, scorer, chosen).to_dict()
    return entry


def _model_columns(source: str, scorer: Scorer, features: list[Column]) -> list[Column]:
    """The columns the model takes, in its order: its own feature names, else every feature."""
    by_name = {c.name: c for c in features}
    if scorer.feature_names:
        missing = [n for n in scorer.feature_names if n not in by_name]
        if missing:
            raise datasets.DataError(
                f"{source}: missing feature column(s) {', '.join(missing)}; the model was "
                f"trained on {', '.join(scorer.feature_names)}"
            )
        chosen = [by_name[n] for n in scorer.feature_names]
    else:
        chosen = features
        if scorer.width is not None and len(chosen) != scorer.width:
            raise datasets.DataError(
                f"{source}: {len(chosen)} feature column(s) ({', '.join(by_name)}); the model "
                f"takes {scorer.width}: pass --label for the column that is not a feature"
            )
    for column in chosen:
        if column.values.dtype.kind != "f":
            raise datasets.DataError(
                f"{source}: column {column.name!r} holds non-numeric values; the model takes "
                "numbers in every feature column"
            )
    return chosen


def _predictions(source: str, scorer: Scorer, chosen: list[Column]) -> Distribution:
    """The model's answers on its input columns ``chosen``, in batches: class labels as
    categories, values as numbers."""
    matrix = np.column_stack([c.values for c in chosen]).astype(scorer.dtype, copy=False)
    answers = []
    try:
        for start in range(0, len(matrix), PREDICT_BATCH):
            rows = matrix[start : start + PREDICT_BATCH]
            if scorer.labels_from_proba and scorer.predict_proba is not None:
                answers.append(_argmax(scorer, scorer.predict_proba(rows)))
            else:
                answers.append(np.asarray(scorer.predict(rows)))
    except (ValueError, TypeError) as exc:
        gaps = [c.name for c in chosen if np.isnan(c.values).any()]
        where = f" (missing values in {', '.join(gaps)})" if gaps else ""
        raise UsageError(
            f"{source}: the model cannot predict on these rows{where}: {exc}",
            hint="record the baseline on rows the model can take",
        ) from None
    predictions = np.concatenate(answers)
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.ndim != 1:
        raise UsageError(
            f"the model answers {predictions.shape[1]} values per row; a baseline of its "
            "predictions needs one label or value per row"
        )
    classifier = scorer.classes is not None or scorer.predict_proba is not None
    return describe(predictions, "categorical" if classifier else None)


def _argmax(scorer: Scorer, proba: np.ndarray) -> np.ndarray:
    index = np.argmax(proba, axis=1)
    return index if scorer.classes is None else np.asarray(scorer.classes)[index]
