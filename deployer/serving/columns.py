"""Feature names for a tabular model's columns: what captured rows and drift metrics call
them. The model's own names (``feature_names_in_``, or ``extra["feature_names"]``), else
the baseline's when it has one name per column, else ``f0 .. f{n-1}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ColumnNames:
    """``names(width)``: cached per width; ``model`` is set once loaded."""

    def __init__(self, fallback: Sequence[str] = ()) -> None:
        self.fallback = tuple(fallback)
        self.model_names: tuple[str, ...] = ()
        self._cache: dict[int, tuple[str, ...]] = {}

    def use_model(self, extra: dict[str, Any]) -> None:
        """Take the loaded model's own feature names, when it has them."""
        names = extra.get("feature_names")
        if names is None:
            names = getattr(extra.get("model"), "feature_names_in_", None)
        if names is not None:
            self.model_names = tuple(str(n) for n in names)
            self._cache.clear()

    def __call__(self, width: int) -> tuple[str, ...]:
        names = self._cache.get(width)
        if names is None:
            for candidate in (self.model_names, self.fallback):
                if len(candidate) == width:
                    names = candidate
                    break
            else:
                names = tuple(f"f{i}" for i in range(width))
            self._cache[width] = names
        return names
