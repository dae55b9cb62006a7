"""``deployer evaluate --to T --labels feedback.csv``: the target's captured predictions
joined with ground truth that arrived later, by request id, and precision, recall and F1
(``sklearn.metrics``, macro) per time window of the predictions and overall.

The join: a feedback row names a request (``--id-column``) and its true label
(``--label-column``); it may carry a ``row`` column, the 0-based index of the row within
that request. Without one (or where it is empty) it labels the request's only prediction;
a request of several predictions then cannot be matched and is counted under
``unmatched_rows``, as is a ``row`` past the request's predictions. Ids that no captured
record has are counted under ``unmatched_ids``; a (request, row) labelled twice keeps the
last label (``duplicates``). Labels and predictions are compared as text (1 and 1.0 are
"1"). None of these is an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from deployer.evaluation import data as datasets
from deployer.monitoring.live import scalar
from deployer.monitoring.table import read_columns
from deployer.providers.monitoring import CapturedRecord, format_time
from deployer.serving.baseline_bins import _text

ROW_COLUMN = "row"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class LabelsResult:
    """Concept drift on one target: the metrics per window and overall, and the counts."""

    target: str
    labels: str
    window: str
    matched: int = 0
    unmatched_ids: int = 0
    unmatched_rows: int = 0
    duplicates: int = 0
    unlabelled: int = 0
    windows: list[dict[str, Any]] = field(default_factory=list)
    overall: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_labels(
    source: str, id_column: str, label_column: str, data_format: str | None = None
) -> tuple[dict[tuple[str, int | None], str], int]:
    """``{(request id, row or None): label}`` from the feedback file, and the duplicates."""
    with datasets.open_data(source, data_format) as data:
        columns = {c.name: c.values for c in read_columns(data)}
    for wanted, option in ((id_column, "--id-column"), (label_column, "--label-column")):
        if wanted not in columns:
            raise datasets.DataError(
                f"{source}: no column {wanted!r} ({option}); the columns are {', '.join(columns)}"
            )
    rows = columns.get(ROW_COLUMN)
    found: dict[tuple[str, int | None], str] = {}
    duplicates = 0
    for i, (request, label) in enumerate(
        zip(columns[id_column], columns[label_column], strict=True)
    ):
        if _empty(request) or _empty(label):
            continue
        row = None if rows is None or _empty(rows[i]) else _row(source, rows[i], i)
        key = (_text(request), row)
        duplicates += key in found
        found[key] = _text(label)
    return found, duplicates


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _row(source: str, value: Any, index: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number < 0 or not number.is_integer():
        raise datasets.DataError(
            f"{source}: column {ROW_COLUMN!r} in data row {index + 1} is {value!r}; expected "
            "a row index (0, 1, ...) within the request"
        )
    return int(number)


def join(
    records: Iterable[CapturedRecord],
    labels: dict[tuple[str, int | None], str],
    result: LabelsResult,
) -> list[tuple[datetime, str, str]]:
    """(prediction time, true label, predicted label) of every labelled prediction; the
    counts into ``result``."""
    used: set[tuple[str, int | None]] = set()
    pairs = []
    seen_ids: set[str] = set()
    for record in records:
        seen_ids.add(record.request_id)
        predictions = [scalar(p) for p in record.predictions or ()]
        for index, predicted in enumerate(predictions):
            key: tuple[str, int | None] = (record.request_id, index)
            if key not in labels and len(predictions) == 1:
                key = (record.request_id, None)
            truth = labels.get(key)
            if truth is None or predicted is None:
                result.unlabelled += 1
                continue
            used.add(key)
            pairs.append((record.time, truth, _text(predicted)))
    for key in labels:
        if key in used:
            continue
        if key[0] in seen_ids:
            result.unmatched_rows += 1
        else:
            result.unmatched_ids += 1
    result.matched = len(pairs)
    return pairs


def scores(truths: list[str], predicted: list[str]) -> dict[str, Any]:
    """Rows, accuracy and macro precision/recall/F1 (sklearn.metrics, 0 where undefined)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        truths, predicted, average="macro", zero_division=0
    )
    return {
        "rows": len(truths),
        "accuracy": float(accuracy_score(truths, predicted)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
    }


def by_window(pairs: list[tuple[datetime, str, str]], window: timedelta) -> list[dict[str, Any]]:
    """The metrics of each window (aligned on the Unix epoch, UTC) that holds predictions."""
    groups: dict[int, tuple[list[str], list[str]]] = {}
    for time, truth, predicted in pairs:
        slot = int((time - _EPOCH) // window)
        truths, answers = groups.setdefault(slot, ([], []))
        truths.append(truth)
        answers.append(predicted)
    out = []
    for slot in sorted(groups):
        start = _EPOCH + slot * window
        out.append(
            {
                "start": format_time(start),
                "end": format_time(start + window),
                **scores(*groups[slot]),
            }
        )
    return out


def evaluate_labels(
    target: str,
    records: Iterable[CapturedRecord],
    source: str,
    *,
    id_column: str = "request_id",
    label_column: str = "label",
    window: timedelta = timedelta(hours=1),
    window_text: str = "1h",
    data_format: str | None = None,
) -> LabelsResult:
    """Join, then measure per window and overall (see the module's docstring)."""
    labels, duplicates = read_labels(source, id_column, label_column, data_format)
    result = LabelsResult(target, source, window_text, duplicates=duplicates)
    pairs = join(records, labels, result)
    if pairs:
        result.windows = by_window(pairs, window)
        result.overall = scores([p[1] for p in pairs], [p[2] for p in pairs])
    return result
