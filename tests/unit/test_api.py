"""The Python API: Project.load/init/validate/lock/serving_settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deployer import ConfigError, Project
from deployer.errors import DeployerError
from deployer.lockfile import sha256_of


@pytest.fixture(scope="module")
def trained_iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from examples.iris.train import train

    return train(tmp_path_factory.mktemp("iris") / "model.joblib")


@pytest.fixture()
def iris_project(tmp_path: Path, trained_iris: Path) -> Path:
    shutil.copy(trained_iris, tmp_path / "model.joblib")
    return tmp_path


def test_init_writes_a_valid_commented_file_and_a_lock(iris_project: Path) -> None:
    project = Project.init(iris_project / "model.joblib", iris_project / "deployer.yaml")
    text = (iris_project / "deployer.yaml").read_text()
    assert "# " in text and "flavor: sklearn" in text and "path: model.joblib" in text
    assert project.flavor == "sklearn"
    lock = json.loads((iris_project / "deployer.lock").read_text())
    assert lock["model_sha256"] == sha256_of(iris_project / "model.joblib")
    assert lock["signature"]["inputs"][0]["shape"] == [-1, 4]


def test_init_refuses_to_overwrite_without_force(iris_project: Path) -> None:
    Project.init(iris_project / "model.joblib", iris_project / "deployer.yaml")
    with pytest.raises(DeployerError, match="already exists"):
        Project.init(iris_project / "model.joblib", iris_project / "deployer.yaml")
    Project.init(iris_project / "model.joblib", iris_project / "deployer.yaml", force=True)


def test_validate_reports_signature_and_detects_a_changed_model(iris_project: Path) -> None:
    Project.init(iris_project / "model.joblib", iris_project / "deployer.yaml")
    project = Project.load(iris_project / "deployer.yaml")
    report = project.validate()
    assert report.flavor == "sklearn"
    assert [o["name"] for o in report.signature["outputs"]] == ["predict", "predict_proba"]
    assert report.warnings == []
    with open(iris_project / "model.joblib", "ab") as f:
        f.write(b"\0")
    assert "changed since deployer.lock" in project.validate(load=False).warnings[0]


def test_validate_rejects_an_unknown_default_method(iris_project: Path) -> None:
    (iris_project / "deployer.yaml").write_text(
        "name: iris\nmodel:\n  path: model.joblib\n  method: transform\n"
    )
    with pytest.raises(ConfigError, match=r"model\.method: 'transform' is not an output"):
        Project.load(iris_project / "deployer.yaml").validate()


def test_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "deployer.yaml").write_text("name: iris\nmodel:\n  path: gone.joblib\n")
    with pytest.raises(ConfigError, match=r"model.path: .*gone.joblib does not exist"):
        Project.load(tmp_path / "deployer.yaml").validate()


def test_undetectable_flavour_asks_for_it(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "deployer.yaml").write_text("name: m1\nmodel:\n  path: model.bin\n")
    with pytest.raises(ConfigError, match=r"cannot tell the flavour of model\.bin"):
        Project.load(tmp_path / "deployer.yaml").validate()


def test_serving_settings_follow_the_config(iris_project: Path) -> None:
    (iris_project / "deployer.yaml").write_text(
        "name: iris\nmodel:\n  path: model.joblib\n  version: '7'\n"
        "serving:\n  port: 9001\n  workers: 3\n  max_body_mb: 1\n"
        "  batching: {enabled: 'off', max_batch_size: 8}\n"
    )
    settings = Project.load(iris_project / "deployer.yaml").serving_settings(port=9100)
    assert settings.port == 9100
    assert settings.workers == 3
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.batching is False
    assert settings.max_batch_size == 8
    assert settings.model_version == "7"
    assert settings.model_path == str(iris_project / "model.joblib")
