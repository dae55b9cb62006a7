"""Choosing a decision threshold on a hand-made curve."""

from __future__ import annotations

import numpy as np
import pytest

from deployer.errors import UsageError
from deployer.evaluation import thresholds

TRUTH = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]) == 1
SCORES = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.55, 0.4, 0.2, 0.1, 0.05])
# threshold: precision / recall (positive when score >= threshold)
#   0.9: 1/1 .25   0.8: 2/2 .5   0.7: 3/3 .75   0.6: 3/4 .75   0.55: 3/5 .75
#   0.4: 3/6 .75   0.3: 4/7 1    0.2: 4/8 1     0.1: 4/9 1     0.05: 4/10 1


def choose(rule: str) -> dict[str, float]:
    return thresholds.choose(thresholds.curve(TRUTH, SCORES), thresholds.parse_rule(rule))


def test_the_curve_by_hand() -> None:
    curve = thresholds.curve(TRUTH, SCORES)
    assert curve.thresholds.tolist() == pytest.approx(
        [0.05, 0.1, 0.2, 0.3, 0.4, 0.55, 0.6, 0.7, 0.8, 0.9]
    )
    assert curve.precision.tolist() == pytest.approx(
        [0.4, 4 / 9, 0.5, 4 / 7, 0.5, 0.6, 0.75, 1, 1, 1]
    )
    assert curve.recall.tolist() == pytest.approx([1, 1, 1, 1, 0.75, 0.75, 0.75, 0.75, 0.5, 0.25])


def test_precision_floor_takes_the_best_recall() -> None:
    assert choose("precision>=0.95") == pytest.approx(
        {"threshold": 0.7, "precision": 1.0, "recall": 0.75, "f1": 6 / 7}
    )
    # 0.6 and 0.7 both keep recall .75: the tie goes to the better precision (1 at 0.7)
    assert choose("precision>=0.7")["threshold"] == pytest.approx(0.7)
    assert choose("precision>=0.5")["threshold"] == pytest.approx(0.3)  # recall 1


def test_recall_floor_takes_the_best_precision() -> None:
    assert choose("recall>=0.9") == pytest.approx(
        {"threshold": 0.3, "precision": 4 / 7, "recall": 1.0, "f1": 8 / 11}
    )


def test_f1_max() -> None:
    assert choose("f1=max")["threshold"] == pytest.approx(0.7)  # F1 6/7


def test_an_unreachable_rule_names_the_best_value() -> None:
    truth = np.array([0, 1, 0, 1]) == 1
    curve = thresholds.curve(truth, np.array([0.9, 0.8, 0.3, 0.2]))
    with pytest.raises(thresholds.ThresholdNotReached) as caught:
        thresholds.choose(curve, thresholds.parse_rule("precision>=0.9"))
    assert caught.value.exit_code == 1
    assert "best reachable precision is 0.5000" in caught.value.message


def test_measured_at_the_threshold() -> None:
    assert thresholds.measured_at(TRUTH, SCORES, 0.3) == pytest.approx(
        {"precision": 4 / 7, "recall": 1.0, "f1": 8 / 11}
    )


@pytest.mark.parametrize("rule", ["precision>0.9", "accuracy>=0.9", "recall>=1.5", "f1=min", ""])
def test_bad_rules_say_what_is_expected(rule: str) -> None:
    with pytest.raises(UsageError, match=r"precision>=X|between 0 and 1"):
        thresholds.parse_rule(rule)


def test_summary_has_about_ten_rows() -> None:
    rows = thresholds.summary(thresholds.curve(TRUTH, SCORES))
    assert 3 <= len(rows) <= 11
    assert rows[0]["threshold"] == pytest.approx(0.05)
    assert [r["threshold"] for r in rows] == sorted(r["threshold"] for r in rows)
