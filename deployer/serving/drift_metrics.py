"""Streaming drift metrics: each feature's and the predictions' bin counts since start
against the baseline baked in the image, as ``deployer_feature_psi{feature=...}`` and
``deployer_prediction_psi`` gauges computed at scrape time (baseline_bins.psi).

Cheap enough to leave on: a request only appends its arrays to a buffer; the counting
runs vectorised over many requests at once (every ``FLUSH_ROWS`` rows, and at scrape
time). Counts are per worker process: with several workers, /metrics shows the PSI of
the traffic the answering worker saw (a random share of the whole).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deployer.serving.baseline_bins import Distribution, psi, read_baseline
from deployer.serving.columns import ColumnNames

if TYPE_CHECKING:  # imported when collected: see deployer.serving.observing
    from prometheus_client.core import Metric

FLUSH_ROWS = 4096


def load_baseline(path: str) -> tuple[dict[str, Distribution], Distribution | None]:
    """The baked baseline file (deployer.lock's ``baseline``); ValueError names the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise ValueError("expected a JSON object")
        return read_baseline(data)
    except (OSError, ValueError) as exc:
        raise ValueError(f"baseline {path}: {exc}") from None


class DriftMetrics:
    """Bin counts since start, and a Prometheus collector of their PSI."""

    def __init__(
        self,
        features: Mapping[str, Distribution],
        prediction: Distribution | None,
        columns: ColumnNames,
    ) -> None:
        self.features = dict(features)
        self.prediction = prediction
        self.columns = columns
        self.counts = {name: np.zeros(d.bins, dtype=np.int64) for name, d in self.features.items()}
        self.prediction_counts = np.zeros(prediction.bins if prediction else 0, dtype=np.int64)
        self._rows: list[Any] = []
        self._predictions: list[Any] = []
        self._pending = 0
        self._lock = threading.Lock()

    def observe(self, request_id: str, rows: Any, result: Any) -> None:
        """Buffer one request's rows and predictions; count once enough are buffered."""
        with self._lock:
            self._rows.append(rows)
            self._predictions.append(result)
            self._pending += _length(rows)
            if self._pending < FLUSH_ROWS:
                return
        self.flush()

    def flush(self) -> None:
        """Count what is buffered."""
        with self._lock:
            rows, predictions = self._rows, self._predictions
            self._rows, self._predictions, self._pending = [], [], 0
            if rows:
                self._count_rows(rows)
            if predictions and self.prediction is not None:
                self._count_predictions(predictions)

    def _count_rows(self, parts: list[Any]) -> None:
        tables = [p for p in parts if isinstance(p, np.ndarray) and p.ndim == 2]
        for shape in {t.shape[1] for t in tables}:
            table = np.concatenate([t for t in tables if t.shape[1] == shape])
            for index, name in enumerate(self.columns(shape)):
                if name in self.counts:
                    self._add(name, table[:, index])
        for part in parts:  # named tensors: a feature per one-value input
            if isinstance(part, Mapping):
                for name, value in part.items():
                    array = np.asarray(value)
                    if name in self.counts and array.size == len(array):
                        self._add(str(name), array.reshape(-1))

    def _count_predictions(self, parts: list[Any]) -> None:
        arrays = []
        for part in parts:
            if isinstance(part, Mapping):  # named outputs: the first one
                part = next(iter(part.values()), None)
            array = np.asarray(part)
            if array.ndim >= 1 and array.size == len(array):  # one value per row
                arrays.append(array.reshape(-1))
        if arrays and self.prediction is not None:
            counts, _ = self.prediction.counts(np.concatenate(arrays))
            self.prediction_counts += counts

    def _add(self, name: str, values: np.ndarray) -> None:
        counts, _ = self.features[name].counts(values)
        self.counts[name] += counts

    def collect(self) -> Iterator[Metric]:
        """The PSI gauges (a Prometheus custom collector)."""
        from prometheus_client.core import GaugeMetricFamily

        self.flush()
        features = GaugeMetricFamily(
            "deployer_feature_psi",
            "Population stability index of each feature since start against the baseline.",
            labels=("feature",),
        )
        for name, distribution in self.features.items():
            features.add_metric((name,), psi(distribution.fractions, self.counts[name]))
        yield features
        if self.prediction is not None:
            yield GaugeMetricFamily(
                "deployer_prediction_psi",
                "Population stability index of the predictions since start against the baseline.",
                value=psi(self.prediction.fractions, self.prediction_counts),
            )


def _length(rows: Any) -> int:
    if isinstance(rows, Mapping):
        first = next(iter(rows.values()), None)
        return 0 if first is None else len(first)
    return len(rows)
