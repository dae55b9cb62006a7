"""deployer.flavors.threshold: predict decides with the threshold, predict_proba stays."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from deployer.flavors import load_model
from deployer.flavors.threshold import ThresholdError, apply_threshold


def _fit(tmp_path: Path, model: object, labels: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(200, 3))
    model.fit(rows, labels(rows) if callable(labels) else labels)  # type: ignore[attr-defined]
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return path


def binary_model(tmp_path: Path) -> Path:
    return _fit(tmp_path, LogisticRegression(), lambda r: np.where(r[:, 0] > 0, "spam", "ham"))


ROWS = np.random.default_rng(1).normal(size=(50, 3))


@pytest.mark.parametrize("value", [0.1, 0.5, 0.9])
def test_predict_is_the_positive_class_at_or_above_the_threshold(
    tmp_path: Path, value: float
) -> None:
    path = binary_model(tmp_path)
    plain = load_model("sklearn", str(path))
    decided = apply_threshold(plain, {"value": value, "positive_label": "spam"})
    proba = decided.predict(ROWS, "predict_proba", {})
    np.testing.assert_array_equal(proba, plain.predict(ROWS, "predict_proba", {}))
    expected = np.where(proba[:, 1] >= value, "spam", "ham")
    answer = decided.predict(ROWS, "predict", {})
    np.testing.assert_array_equal(answer, expected)
    assert answer.dtype == np.asarray(joblib.load(path).classes_).dtype
    assert decided.extra["threshold"] == value


def test_a_high_threshold_changes_decisions_the_model_would_make(tmp_path: Path) -> None:
    plain = load_model("sklearn", str(binary_model(tmp_path)))
    decided = apply_threshold(plain, {"value": 0.95, "positive_label": "spam"})
    before = plain.predict(ROWS, "predict", {})
    after = decided.predict(ROWS, "predict", {})
    assert (before == "spam").sum() > (after == "spam").sum()


def test_multiclass_is_refused(tmp_path: Path) -> None:
    path = _fit(tmp_path, LogisticRegression(), np.arange(200) % 3)
    with pytest.raises(ThresholdError, match="binary classifier; this model has 3 classes"):
        apply_threshold(load_model("sklearn", str(path)), {"value": 0.5})


def test_regression_is_refused(tmp_path: Path) -> None:
    path = _fit(tmp_path, LinearRegression(), np.arange(200.0))
    with pytest.raises(ThresholdError, match=r"offers predict$"):
        apply_threshold(load_model("sklearn", str(path)), {"value": 0.5})


def test_a_positive_label_other_than_the_models_is_refused(tmp_path: Path) -> None:
    plain = load_model("sklearn", str(binary_model(tmp_path)))
    with pytest.raises(ThresholdError, match="positive_label: 'ham' is not"):
        apply_threshold(plain, {"value": 0.5, "positive_label": "ham"})


@pytest.mark.parametrize("value", [-0.1, 1.5, "0.5", True, None])
def test_a_value_outside_0_1_is_refused(tmp_path: Path, value: object) -> None:
    plain = load_model("sklearn", str(binary_model(tmp_path)))
    with pytest.raises(ThresholdError, match=r"value: .* is not a number between 0 and 1"):
        apply_threshold(plain, {"value": value})
