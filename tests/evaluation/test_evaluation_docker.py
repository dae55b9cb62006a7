"""Evaluating what is really deployed: examples/iris through the local Docker target gives
the numbers of the model evaluated in this process."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.docker


def test_iris_through_the_local_target_equals_in_process(iris_project: Any) -> None:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    holdout = iris_project.root / "holdout.csv"
    frame.to_csv(holdout, index=False)
    pushed = iris_project.push(["local"])
    assert pushed.ok, pushed.targets[0].error

    here = iris_project.evaluate(holdout, "species", record=False)
    there = iris_project.evaluate(holdout, "species", to="local", batch_size=40)

    assert here.through == "in-process" and there.through == "local"
    assert there.data["rows"] == here.data["rows"] == 150
    assert there.metrics == pytest.approx(here.metrics)
    assert set(there.metrics) >= {"accuracy", "f1_macro", "roc_auc", "pr_auc", "log_loss"}
    assert there.confusion_matrix == here.confusion_matrix
    assert set(there.per_class) == set(here.per_class) == {"0", "1", "2"}
    for label, numbers in here.per_class.items():
        assert there.per_class[label] == pytest.approx(numbers)
    recorded = json.loads((iris_project.root / "deployer.lock").read_text())["evaluation"]
    assert recorded["through"] == "local"
    assert recorded["model_sha256"] == iris_project.model_sha256()
