"""One column's baseline distribution (``deployer.serving.baseline_bins.Distribution``):
decile bins for numbers, the most frequent categories for the rest.

Which columns are categorical: text and booleans, and integers with at most
``FEW_INTEGERS`` distinct values (a code, a count of rooms); every other number is numeric.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import numpy as np

from deployer.serving.baseline_bins import Distribution, _text

FEW_INTEGERS = 10  # an integer column with at most this many distinct values: categorical
TOP_CATEGORIES = 50  # a categorical column keeps this many categories, the rest are "other"
DECILES = np.linspace(0.1, 0.9, 9)
PERCENTILES = np.linspace(0.0, 1.0, 101)

Kind = Literal["numeric", "categorical"]


def kind_of(values: np.ndarray) -> Kind:
    """``numeric`` or ``categorical`` by the rule in the module's docstring."""
    if values.dtype.kind == "f":
        return "numeric"
    if values.dtype.kind in "iu":
        return "categorical" if np.unique(values).size <= FEW_INTEGERS else "numeric"
    present = [v for v in values if not _missing(v)]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        integral = all(float(v).is_integer() for v in present)
        few = len({float(v) for v in present}) <= FEW_INTEGERS
        return "categorical" if integral and few else "numeric"
    return "categorical"


def describe(values: np.ndarray, kind: Kind | None = None) -> Distribution:
    """The distribution of ``values`` (missing: None or NaN), as ``kind`` or detected."""
    kind = kind or kind_of(values)
    if kind == "numeric":
        return _numeric(values)
    return _categorical(values)


def _numeric(values: np.ndarray) -> Distribution:
    numbers = (
        np.array([_number(v) for v in values], dtype=np.float64)
        if (values.dtype.kind not in "biuf")
        else values.astype(np.float64)
    )
    present = numbers[~np.isnan(numbers)]
    missing = _share(numbers.size - present.size, numbers.size)
    if not present.size:
        return Distribution("numeric", (1.0,), missing)
    edges = tuple(float(e) for e in np.unique(np.quantile(present, DECILES)))
    quantiles = tuple(float(q) for q in np.quantile(present, PERCENTILES))
    shape = Distribution("numeric", (0.0,) * (len(edges) + 1), missing, edges)
    counts, _ = shape.counts(present)
    return Distribution("numeric", _fractions(counts), missing, edges, quantiles=quantiles)


def _categorical(values: np.ndarray) -> Distribution:
    texts = Counter(_text(v) for v in values if not _missing(v))
    present = sum(texts.values())
    missing = _share(len(values) - present, len(values))
    ranked = sorted(texts.items(), key=lambda item: (-item[1], item[0]))[:TOP_CATEGORIES]
    categories = tuple(name for name, _ in ranked)
    shape = Distribution("categorical", (0.0,) * (len(categories) + 1), missing, (), categories)
    counts, _ = shape.counts([v for v in values if not _missing(v)])
    return Distribution("categorical", _fractions(counts), missing, (), categories)


def _fractions(counts: np.ndarray) -> tuple[float, ...]:
    total = counts.sum()
    if total <= 0:
        return tuple(1.0 / len(counts) for _ in counts)
    return tuple(float(c) / float(total) for c in counts)


def _share(part: int, whole: int) -> float:
    return float(part) / float(whole) if whole else 0.0


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _number(value: Any) -> float:
    """A number, or NaN for anything else (missing, text, a boolean)."""
    if value is None or isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
