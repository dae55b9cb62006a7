"""deployer.lock's baseline: baked into the image (a file named by the serving settings)
while its model_sha256 is the model's, changing the image tag; stale: not baked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from deployer import Project
from deployer.errors import ConfigError
from deployer.image import baseline
from deployer.image.context import assemble
from deployer.lockfile import sha256_of


def distribution() -> dict[str, Any]:
    return {"kind": "numeric", "edges": [0.0], "fractions": [0.5, 0.5], "missing": 0.0}


def make_project(folder: Path) -> Project:
    rows = np.random.default_rng(0).normal(size=(50, 2))
    joblib.dump(LogisticRegression().fit(rows, rows[:, 0] > 0), folder / "model.joblib")
    (folder / "deployer.yaml").write_text("name: spam\nmodel:\n  path: model.joblib\n")
    return Project.load(folder / "deployer.yaml")


def write_baseline(folder: Path, model_sha256: str, features: Any = None) -> dict[str, Any]:
    recorded = {
        "model_sha256": model_sha256,
        "features": features if features is not None else {"f0": distribution()},
        "prediction": distribution(),
    }
    lock = {"model_sha256": sha256_of(folder / "model.joblib"), "baseline": recorded}
    (folder / "deployer.lock").write_text(json.dumps(lock))
    return recorded


def test_the_models_baseline_is_baked_and_changes_the_tag(tmp_path: Path) -> None:
    plain = make_project(tmp_path)
    plain_ref = plain.image_ref()
    assert plain.build_spec().baseline is None
    recorded = write_baseline(tmp_path, plain.model_sha256() or "")
    project = Project.load(tmp_path / "deployer.yaml")
    spec = project.build_spec()
    assert spec.baseline == recorded
    assert spec.tag == project.image_ref() != plain_ref
    write_baseline(tmp_path, plain.model_sha256() or "", {"f1": distribution()})
    assert Project.load(tmp_path / "deployer.yaml").image_ref() not in (plain_ref, spec.tag)


def test_another_models_baseline_is_not_baked(tmp_path: Path) -> None:
    plain = make_project(tmp_path)
    write_baseline(tmp_path, "f" * 64)
    project = Project.load(tmp_path / "deployer.yaml")
    assert project.build_spec().baseline is None
    assert project.image_ref() == plain.image_ref()


def test_a_malformed_baseline_names_the_lock_and_field(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    write_baseline(tmp_path, project.model_sha256() or "", {"f0": {"kind": "weird"}})
    with pytest.raises(ConfigError) as caught:
        project.build_spec()
    assert "deployer.lock" in str(caught.value) and "baseline.features.f0.kind" in str(caught.value)


def test_the_build_context_carries_the_baseline(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    recorded = write_baseline(tmp_path, project.model_sha256() or "")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "requirements.txt").write_text("numpy\n")
    context = assemble(
        Project.load(tmp_path / "deployer.yaml").build_spec(), wheels, tmp_path / "ctx"
    )
    settings = json.loads((context.path / "serving.json").read_text())
    assert settings["baseline_path"] == baseline.IMAGE_FILE
    assert json.loads((context.path / "monitoring" / "baseline.json").read_text()) == recorded
    assert "COPY monitoring/ /opt/deployer/monitoring/" in (context.path / "Dockerfile").read_text()
