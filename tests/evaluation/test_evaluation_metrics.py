"""Each metric against a case computed by hand (the expected numbers are written out)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deployer.evaluation import metrics

# 4 positives, 6 negatives; predicted positive when the score is >= 0.5.
Y_TRUE = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
SCORES = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.55, 0.4, 0.2, 0.1, 0.05])
Y_PRED = (SCORES >= 0.5).astype(int)  # 1 1 1 0 1 1 0 0 0 0: TP 3, FN 1, FP 2, TN 4
PROBA = np.column_stack((1 - SCORES, SCORES))


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-6)


def test_binary_label_metrics_by_hand() -> None:
    found = metrics.classification(Y_TRUE, Y_PRED, PROBA, np.array([0, 1]), positive=1)
    assert found.confusion == {"labels": ["0", "1"], "matrix": [[4, 2], [1, 3]]}
    m = found.metrics
    assert m["accuracy"] == approx(7 / 10)
    # class 1: P 3/5, R 3/4, F1 2/3; class 0: P 4/5, R 4/6, F1 8/11
    assert found.per_class["1"] == {
        "precision": approx(0.6),
        "recall": approx(0.75),
        "f1": approx(2 / 3),
        "support": 4,
    }
    assert found.per_class["0"] == {
        "precision": approx(0.8),
        "recall": approx(4 / 6),
        "f1": approx(8 / 11),
        "support": 6,
    }
    assert m["precision_macro"] == approx(0.7)
    assert m["recall_macro"] == approx((0.75 + 4 / 6) / 2)
    assert m["f1_macro"] == approx((2 / 3 + 8 / 11) / 2)
    assert m["precision_weighted"] == approx(0.72)  # (0.8 * 6 + 0.6 * 4) / 10
    assert m["recall_weighted"] == approx(0.7)
    assert m["f1_weighted"] == approx((8 / 11 * 6 + 2 / 3 * 4) / 10)


def test_binary_probability_metrics_by_hand() -> None:
    found = metrics.classification(Y_TRUE, Y_PRED, PROBA, np.array([0, 1]), positive=1)
    # 21 of the 24 (positive, negative) pairs are ordered right
    assert found.metrics["roc_auc"] == approx(21 / 24)
    # positives at ranks 1, 2, 3 and 7: (1 + 1 + 1 + 4/7) / 4
    assert found.metrics["pr_auc"] == approx((3 + 4 / 7) / 4)
    probabilities = [0.9, 0.8, 0.7, 0.3, 0.4, 0.45, 0.6, 0.8, 0.9, 0.95]
    assert found.metrics["log_loss"] == approx(-sum(map(math.log, probabilities)) / 10)
    assert found.metrics["log_loss"] == approx(0.4494573228)
    assert found.skipped == {}


def test_the_positive_class_decides_the_binary_curves() -> None:
    as_zero = metrics.classification(Y_TRUE, Y_PRED, PROBA, np.array([0, 1]), positive=0)
    assert as_zero.metrics["roc_auc"] == approx(21 / 24)  # symmetric
    # negatives ranked by 1 - score: 0.95 0.9 0.8 (neg) 0.7 (pos) 0.6 (neg) 0.45 0.4 (neg) ...
    assert as_zero.metrics["pr_auc"] != approx((3 + 4 / 7) / 4)


def test_multiclass_one_vs_rest_by_hand() -> None:
    y_true = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.1, 0.7, 0.2],
            [0.2, 0.3, 0.5],
            [0.6, 0.2, 0.2],
            [0.05, 0.4, 0.55],
            [0.1, 0.3, 0.6],
        ]
    )
    y_pred = np.argmax(proba, axis=1)  # 0 1 2 0 2 2
    found = metrics.classification(y_true, y_pred, proba, np.array([0, 1, 2]))
    assert found.confusion == {
        "labels": ["0", "1", "2"],
        "matrix": [[2, 0, 0], [0, 1, 1], [0, 0, 2]],
    }
    assert found.metrics["accuracy"] == approx(5 / 6)
    # classes 0 and 1 are separated perfectly; class 2: 7 of 8 pairs, AP (1 + 2/3) / 2
    assert found.metrics["roc_auc"] == approx((1 + 1 + 7 / 8) / 3)
    assert found.metrics["pr_auc"] == approx((1 + 1 + 5 / 6) / 3)
    assert found.metrics["log_loss"] == approx(
        -sum(map(math.log, [0.8, 0.7, 0.5, 0.6, 0.4, 0.6])) / 6
    )
    assert found.per_class["2"]["precision"] == approx(2 / 3)
    assert found.per_class["1"]["recall"] == approx(1 / 2)


def test_without_probabilities_the_label_metrics_remain_and_the_rest_say_why() -> None:
    found = metrics.classification(Y_TRUE, Y_PRED, None, np.array([0, 1]), positive=1)
    assert found.metrics["accuracy"] == approx(0.7)
    assert set(found.skipped) == {"roc_auc", "pr_auc", "log_loss"}
    assert all("predict_proba" in why for why in found.skipped.values())


def test_regression_by_hand() -> None:
    found = metrics.regression(np.array([3, -0.5, 2, 7]), np.array([2.5, 0.0, 2, 8]))
    assert found.metrics["mae"] == approx(0.5)  # (0.5 + 0.5 + 0 + 1) / 4
    assert found.metrics["mse"] == approx(0.375)  # (0.25 + 0.25 + 0 + 1) / 4
    assert found.metrics["rmse"] == approx(math.sqrt(0.375))
    assert found.metrics["r2"] == approx(1 - 1.5 / 29.1875)  # SS_res 1.5, SS_tot 29.1875


def test_labels_are_aligned_to_the_model_classes() -> None:
    assert metrics.align_labels(np.array([1.0, 0.0]), np.array([0, 1])).dtype.kind == "i"
    texts = metrics.align_labels(np.array([1, 0]), np.array(["0", "1"]))
    assert list(texts) == ["1", "0"]


def test_labels_that_are_no_class_of_the_model_are_named() -> None:
    y_true = np.array([0, 1, 2, 0, 1, 7])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
    y_pred = np.array([0, 1, 0, 0, 1, 0])
    found = metrics.classification(y_true, y_pred, proba, np.array([0, 1]), positive=1)
    assert found.skipped["log_loss"] == "label(s) 2, 7 are not classes of the model"
    assert found.metrics["accuracy"] == approx(4 / 6)  # the rows labelled 2 and 7 are wrong
    assert found.confusion["matrix"] == [[2, 0], [0, 2]]  # only the model's classes
    assert found.per_class["0"]["support"] == 2


def test_an_undefined_metric_is_skipped_not_nan() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = metrics.regression(np.array([3.0]), np.array([2.5]))  # R² of one row
    assert found.metrics == {"mae": approx(0.5), "mse": approx(0.25), "rmse": approx(0.5)}
    assert found.skipped == {"r2": "undefined on this data"}
