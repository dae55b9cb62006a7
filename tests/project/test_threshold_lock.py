"""deployer.lock's evaluation.threshold: carried into the serving settings and the image
tag while it belongs to the model; stale: warned about, not applied; on a model that
cannot take it: an error naming deployer.lock and the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from deployer import Project
from deployer.errors import ConfigError
from deployer.lockfile import sha256_of
from deployer.providers import Change, Plan


def make_project(
    folder: Path, model: Any, threshold: dict[str, Any] | None = None, classes: int = 2
) -> Path:
    rows = np.random.default_rng(0).normal(size=(100, 3))
    labels = (rows[:, 0] > 0).astype(int) if classes == 2 else np.arange(100) % classes
    model.fit(rows, labels)
    joblib.dump(model, folder / "model.joblib")
    (folder / "deployer.yaml").write_text("name: spam\nmodel:\n  path: model.joblib\n")
    if threshold is not None:
        write_lock(folder, sha256_of(folder / "model.joblib"), threshold)
    return folder / "deployer.yaml"


def write_lock(folder: Path, model_sha256: str, threshold: dict[str, Any]) -> None:
    lock = {
        "model_path": "model.joblib",
        "model_sha256": model_sha256,
        "flavor": "sklearn",
        "signature": {},
        "evaluation": {"model_sha256": model_sha256, "threshold": threshold},
    }
    (folder / "deployer.lock").write_text(json.dumps(lock))


THRESHOLD = {"value": 0.7, "rule": "precision>=0.95", "positive_label": "1", "precision": 0.96}


def test_the_threshold_goes_into_the_serving_settings_and_the_tag(tmp_path: Path) -> None:
    plain = Project.load(make_project(tmp_path, LogisticRegression()))
    plain_ref, plain_spec = plain.image_ref(), plain.build_spec()
    assert plain_spec.settings.decision_threshold is None
    assert plain_ref == f"spam:{plain.artifact_sha256()[:12]}"  # unchanged without one

    write_lock(tmp_path, plain.model_sha256() or "", THRESHOLD)
    project = Project.load(tmp_path / "deployer.yaml")
    spec = project.build_spec()
    assert spec.settings.decision_threshold == {"value": 0.7, "positive_label": "1"}
    assert project.serving_settings().decision_threshold == spec.settings.decision_threshold
    assert spec.tag == project.image_ref() != plain_ref
    write_lock(tmp_path, plain.model_sha256() or "", {**THRESHOLD, "value": 0.6})
    assert Project.load(tmp_path / "deployer.yaml").image_ref() not in (plain_ref, spec.tag)


def test_the_image_labels_name_the_threshold(tmp_path: Path) -> None:
    from deployer.image.context import image_labels

    project = Project.load(make_project(tmp_path, LogisticRegression(), THRESHOLD))
    assert image_labels(project.build_spec(), None)["dev.deployer.threshold"] == "0.7"


def test_the_served_model_decides_with_the_threshold(tmp_path: Path) -> None:
    project = Project.load(make_project(tmp_path, LogisticRegression(), THRESHOLD))
    rows = np.random.default_rng(2).normal(size=(30, 3))
    proba = project.load_model().predict(rows, "predict_proba", {})
    answer = project.served_model().predict(rows, "predict", {})
    np.testing.assert_array_equal(answer, (proba[:, 1] >= 0.7).astype(int))
    assert project.validate().warnings == []


def test_a_stale_threshold_is_not_applied_and_is_warned_about(tmp_path: Path) -> None:
    folder = tmp_path
    make_project(folder, LogisticRegression())
    write_lock(folder, "0" * 64, THRESHOLD)
    project = Project.load(folder / "deployer.yaml")
    assert project.build_spec().settings.decision_threshold is None
    assert project.image_ref() == f"spam:{project.artifact_sha256()[:12]}"
    (warning,) = [w for w in project.validate().warnings if "evaluation.threshold" in w]
    assert "deployer.lock" in warning and "another model" in warning and "not applied" in warning


@pytest.mark.parametrize(
    ("model", "classes", "expected"),
    [
        (LinearRegression(), 2, "needs a binary classifier with predict and predict_proba"),
        (LogisticRegression(), 3, "needs a binary classifier; this model has 3 classes"),
    ],
    ids=["regression", "multiclass"],
)
def test_a_model_that_cannot_take_the_threshold_is_an_error(
    tmp_path: Path, model: Any, classes: int, expected: str
) -> None:
    project = Project.load(make_project(tmp_path, model, THRESHOLD, classes))
    with pytest.raises(ConfigError) as caught:
        project.validate()
    assert caught.value.source.endswith("deployer.lock")
    assert caught.value.problems[0].startswith("evaluation.threshold: ")
    assert expected in caught.value.problems[0]
    with pytest.raises(ConfigError):
        project.build()  # before any Docker work


def test_a_malformed_threshold_names_the_field(tmp_path: Path) -> None:
    project = Project.load(make_project(tmp_path, LogisticRegression(), {"value": 3}))
    with pytest.raises(ConfigError, match=r"evaluation\.threshold\.value: 3 is not a number"):
        project.serving_settings()


def test_plan_notes_the_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deployer.orchestrate as orchestrate
    from deployer.image.build import Image

    project = Project.load(make_project(tmp_path, LogisticRegression(), THRESHOLD))
    image = Image("spam:1", "sha256:" + "0" * 64, 1, {})
    monkeypatch.setattr(Project, "build", lambda self, **_: image)
    monkeypatch.setattr(Project, "providers", lambda self, names=None: {})
    monkeypatch.setattr(
        orchestrate, "plan_targets", lambda *_: [Plan("local", [Change("create", "x")])]
    )
    (plan,) = project.plan(["local"])
    (note,) = plan.notes
    assert "P >= 0.7" in note and "precision>=0.95" in note and "evaluation.threshold" in note


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )


def test_cli_validate_refuses_a_threshold_on_a_regressor(tmp_path: Path) -> None:
    make_project(tmp_path, LinearRegression(), THRESHOLD)
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "deployer.lock" in result.stderr and "evaluation.threshold" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_validate_warns_about_a_stale_threshold(tmp_path: Path) -> None:
    make_project(tmp_path, LogisticRegression())
    write_lock(tmp_path, "0" * 64, THRESHOLD)
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "evaluation.threshold" in result.stderr
