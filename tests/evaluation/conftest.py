"""Fixtures of the evaluation tests: a small binary classifier project and its holdout set
in every format, and a regression project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from evaluation_support import holdout_rows, write_formats, write_project


@pytest.fixture
def binary_project(tmp_path: Path) -> Path:
    """A logistic regression on f0..f2 (trained without column names) and its holdout files."""
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "binary"
    folder.mkdir()
    features, labels = holdout_rows(seed=1, rows=300)
    write_project(folder, LogisticRegression().fit(features, labels))
    held_features, held_labels = holdout_rows(seed=2)
    write_formats(folder, held_features, held_labels)
    return folder


@pytest.fixture
def regression_project(tmp_path: Path) -> Path:
    from sklearn.linear_model import LinearRegression

    folder = tmp_path / "regression"
    folder.mkdir()
    features, _ = holdout_rows(seed=3)
    target = features @ np.array([1.0, -2.0, 0.5]) + 0.1
    write_project(folder, LinearRegression().fit(features, target), name="regressor")
    noisy = target + np.random.default_rng(4).normal(scale=0.1, size=len(target))
    write_formats(folder, features, noisy)
    return folder
