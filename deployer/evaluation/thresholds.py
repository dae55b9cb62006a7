"""The precision/recall trade-off of a binary classifier and choosing its decision threshold.

The curve is ``sklearn.metrics.precision_recall_curve`` over the positive class's
probability: at threshold t the model says "positive" when that probability is >= t. F1
along the curve is the harmonic mean of its precision and recall; the chosen point's
numbers are measured again with ``sklearn.metrics`` at that threshold.

Rules (``--choose-threshold``): ``precision>=X`` (the threshold meeting it with the best
recall), ``recall>=X`` (the one meeting it with the best precision), ``f1=max``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from deployer.errors import DeployerError, UsageError

_RULE = re.compile(r"^\s*(precision|recall)\s*>=\s*([0-9]*\.?[0-9]+)\s*$|^\s*f1\s*=\s*max\s*$")
SUMMARY_POINTS = 10


class ThresholdNotReached(DeployerError):
    """No threshold on the curve meets the rule (exit 1): names the best reachable value."""


@dataclass(frozen=True)
class Rule:
    """A parsed rule: ``metric`` (precision, recall or f1) and its floor (None: maximise)."""

    text: str
    metric: str
    floor: float | None


def parse_rule(text: str) -> Rule:
    """``precision>=0.95``, ``recall>=0.9`` or ``f1=max``; a UsageError otherwise."""
    found = _RULE.match(text)
    if not found:
        raise UsageError(
            f"--choose-threshold {text!r}: expected precision>=X, recall>=X (X between 0 "
            "and 1) or f1=max"
        )
    if found.group(1) is None:
        return Rule("f1=max", "f1", None)
    floor = float(found.group(2))
    if not 0.0 <= floor <= 1.0:
        raise UsageError(f"--choose-threshold {text!r}: {floor} is not between 0 and 1")
    return Rule(f"{found.group(1)}>={found.group(2)}", found.group(1), floor)


@dataclass(frozen=True)
class Curve:
    """One point per distinct threshold, ascending: precision, recall and F1 there."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray

    def point(self, index: int) -> dict[str, float]:
        return {
            "threshold": float(self.thresholds[index]),
            "precision": float(self.precision[index]),
            "recall": float(self.recall[index]),
            "f1": float(self.f1[index]),
        }

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "thresholds": self.thresholds.tolist(),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "f1": self.f1.tolist(),
        }


def curve(truth: np.ndarray, scores: np.ndarray) -> Curve:
    """The trade-off of ``scores`` (the positive class's probability) against ``truth``
    (True where the label is the positive class)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(truth, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    total = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    return Curve(thresholds, precision, recall, f1)


def summary(trade_off: Curve, points: int = SUMMARY_POINTS) -> list[dict[str, float]]:
    """About ``points`` rows for people: the curve at thresholds 0.1, 0.2, ... 0.9 (each the
    first point at or above it), and its lowest threshold."""
    if not len(trade_off.thresholds):
        return []
    wanted = [float(trade_off.thresholds[0]), *np.linspace(0, 1, points + 1)[1:-1]]
    indices = sorted(
        {
            int(i)
            for i in np.searchsorted(trade_off.thresholds, wanted, side="left")
            if i < len(trade_off.thresholds)
        }
    )
    return [trade_off.point(i) for i in indices]


def choose(trade_off: Curve, rule: Rule) -> dict[str, float]:
    """The point of the curve the rule picks; ThresholdNotReached when none meets it."""
    if not len(trade_off.thresholds):
        raise ThresholdNotReached(f"no threshold to choose for {rule.text}: the curve is empty")
    if rule.floor is None:
        order = np.lexsort((trade_off.thresholds, trade_off.f1))
        return trade_off.point(int(order[-1]))
    measured = trade_off.precision if rule.metric == "precision" else trade_off.recall
    other = trade_off.recall if rule.metric == "precision" else trade_off.precision
    meets = np.flatnonzero(measured >= rule.floor)
    if not len(meets):
        best = int(np.argmax(measured))
        raise ThresholdNotReached(
            f"no threshold reaches {rule.text}: the best reachable {rule.metric} is "
            f"{measured[best]:.4f} (at threshold {trade_off.thresholds[best]:.4f})",
            hint="relax the rule, or evaluate on more data",
        )
    keys = (trade_off.thresholds[meets], measured[meets], other[meets])
    return trade_off.point(int(meets[np.lexsort(keys)[-1]]))


def measured_at(truth: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 (``sklearn.metrics``) of deciding ``scores >= threshold``."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    decided = scores >= threshold
    return {
        "precision": float(precision_score(truth, decided, zero_division=0)),
        "recall": float(recall_score(truth, decided, zero_division=0)),
        "f1": float(f1_score(truth, decided, zero_division=0)),
    }


def positive_index(classes: list[Any], positive: str | None) -> int:
    """The column of the positive class: ``--positive`` (compared as text) or classes[1]."""
    if positive is None:
        return 1
    from deployer.evaluation.metrics import label_key

    keys = [label_key(c) for c in classes]
    if positive not in keys:
        raise UsageError(f"--positive {positive!r}: expected one of the classes {', '.join(keys)}")
    return keys.index(positive)
