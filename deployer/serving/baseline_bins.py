"""A training baseline's bins, as ``deployer baseline`` records them in deployer.lock and the
image bakes them: each feature's (and the predictions') distribution, and the population
stability index of live values against it. numpy only: the image imports this module.

deployer.lock's ``baseline``::

    {"model_sha256": str, "data": {"source": str, "sha256": str, "rows": int},
     "created_at": str,
     "features": {name: DISTRIBUTION, ...}, "prediction": DISTRIBUTION}

    DISTRIBUTION (numeric):     {"kind": "numeric", "edges": [e1, ..., ek] (ascending cut
                                 points: k + 1 bins, the first and last open-ended),
                                 "fractions": [k + 1 shares of the non-missing values],
                                 "missing": share missing, "quantiles": [q0..q100]}
    DISTRIBUTION (categorical): {"kind": "categorical", "categories": [c1, ..., ck] (text),
                                 "fractions": [k + 1 shares: each category, then any other],
                                 "missing": share missing}
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

EPSILON = 1e-4  # a share never taken as 0 in PSI (0 would be infinite)


@dataclass(frozen=True)
class Distribution:
    """One feature's (or the predictions') baseline distribution."""

    kind: Literal["numeric", "categorical"]
    fractions: tuple[float, ...]
    missing: float = 0.0
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    quantiles: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Distribution:
        """Read one DISTRIBUTION; ValueError names ``where`` and the field."""
        kind = data.get("kind")
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"{where}.kind: expected numeric or categorical, got {kind!r}")
        fractions = tuple(float(f) for f in data.get("fractions", ()))
        edges = tuple(float(e) for e in data.get("edges", ()))
        categories = tuple(str(c) for c in data.get("categories", ()))
        bins = len(edges) + 1 if kind == "numeric" else len(categories) + 1
        if len(fractions) != bins:
            raise ValueError(f"{where}.fractions: expected {bins} shares, got {len(fractions)}")
        if kind == "numeric" and any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError(f"{where}.edges: expected strictly ascending cut points")
        return cls(
            kind,
            fractions,
            float(data.get("missing", 0.0)),
            edges,
            categories,
            tuple(float(q) for q in data.get("quantiles", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "numeric":
            out["edges"] = list(self.edges)
        else:
            out["categories"] = list(self.categories)
        out["fractions"] = list(self.fractions)
        out["missing"] = self.missing
        if self.quantiles:
            out["quantiles"] = list(self.quantiles)
        return out

    @property
    def bins(self) -> int:
        return len(self.fractions)

    def counts(self, values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, int]:
        """How many of ``values`` fall in each bin, and how many are missing (None, NaN,
        or, for a numeric feature, not a number)."""
        if self.kind == "numeric":
            numbers = _as_float(values)
            present = numbers[~np.isnan(numbers)]
            index = np.searchsorted(np.asarray(self.edges), present, side="right")
            return np.bincount(index, minlength=self.bins), int(numbers.size - present.size)
        position = {c: i for i, c in enumerate(self.categories)}
        other = len(self.categories)
        counts = np.zeros(self.bins, dtype=np.int64)
        missing = 0
        for value in values:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                missing += 1
            else:
                counts[position.get(_text(value), other)] += 1
        return counts, missing


def psi(expected: Sequence[float], actual_counts: Sequence[int] | np.ndarray) -> float:
    """The population stability index of ``actual_counts`` against the baseline shares
    ``expected``: sum((a - e) * ln(a / e)), each share at least EPSILON. NaN without data."""
    counts = np.asarray(actual_counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return math.nan
    a = np.clip(counts / total, EPSILON, None)
    e = np.clip(np.asarray(expected, dtype=np.float64), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def read_baseline(data: Mapping[str, Any]) -> tuple[dict[str, Distribution], Distribution | None]:
    """deployer.lock's ``baseline``: each feature's distribution and the predictions'."""
    features = data.get("features")
    if not isinstance(features, Mapping):
        raise ValueError("baseline.features: expected a mapping of feature name to distribution")
    read = {
        str(name): Distribution.from_dict(value, f"baseline.features.{name}")
        for name, value in features.items()
    }
    prediction = data.get("prediction")
    return read, (Distribution.from_dict(prediction, "baseline.prediction") if prediction else None)


def _as_float(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """``values`` as float64, anything that is not a number as NaN."""
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array.astype(np.float64, copy=False)
    out = np.empty(len(array), dtype=np.float64)
    for i, value in enumerate(array):
        try:
            out[i] = float(value) if value is not None and not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            out[i] = math.nan
    return out


def _text(value: Any) -> str:
    """A category as text: 1.0 and 1 are "1", as a CSV reader and a JSON body agree."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
