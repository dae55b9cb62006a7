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
        "  limits: {max_headers: 7, header_timeout_s: 2.5}\n"
    )
    settings = Project.load(iris_project / "deployer.yaml").serving_settings(port=9100)
    assert settings.max_headers == 7
    assert settings.header_timeout_s == 2.5
    assert settings.port == 9100
    assert settings.workers == 3
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.batching is False
    assert settings.max_batch_size == 8
    assert settings.model_version == "7"
    assert settings.model_path == str(iris_project / "model.joblib")


def test_build_spec_is_what_build_builds(
    iris_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (iris_project / "deployer.yaml").write_text(
        "name: iris\nmodel: {path: model.joblib}\n"
        "image: {base: 'python:3.12-slim', python: '3.12', requirements: [lightgbm]}\n"
    )
    project = Project.load(iris_project / "deployer.yaml")
    monkeypatch.delenv("DEPLOYER_BASE_IMAGE", raising=False)
    spec = project.build_spec(platform="linux/arm64")
    assert (
        spec.tag == project.image_ref() == f"iris:{sha256_of(iris_project / 'model.joblib')[:12]}"
    )
    assert (spec.name, spec.flavor, spec.base, spec.python) == (
        "iris",
        "sklearn",
        "python:3.12-slim",
        "3.12",
    )
    assert (spec.platform, spec.requirements, spec.code) == ("linux/arm64", ("lightgbm",), ())
    assert spec.model_path == iris_project / "model.joblib" and spec.source == project.root
    assert spec.settings == project.serving_settings()
    monkeypatch.setenv("DEPLOYER_BASE_IMAGE", "deployer-base:test")
    assert project.build_spec(tag="x:1").base == "deployer-base:test"
    assert project.build_spec(tag="x:1").tag == "x:1"


def test_the_build_context_comes_from_a_plain_spec(tmp_path: Path) -> None:
    """No Project: a hand-made spec for a custom predictor with its code and model folder."""
    from deployer.image.context import CODE_DIR, MODEL_DIR, assemble
    from deployer.image.spec import BuildSpec
    from deployer.serving.settings import ServingSettings

    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "predictor.py").write_text("class P: ...\n")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "w.bin").write_bytes(b"\0")
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "requirements.txt").write_text("numpy==2.0.0\norjson==3.10.0\n")
    settings = ServingSettings(
        "custom",
        "python",
        str(tmp_path / "weights"),
        flavor_options={"predictor": "predictor:P", "code_paths": [str(tmp_path)]},
        workers=2,
    )
    spec = BuildSpec(
        name="custom",
        tag="custom:1",
        flavor="python",
        artifact_sha256="ab" * 32,
        model_path=tmp_path / "weights",
        code=(tmp_path / "src", tmp_path / "predictor.py"),
        settings=settings,
        base="deployer-base:test",
        platform="linux/amd64",
        python="3.11",
    )
    context = assemble(spec, tmp_path / "wheels", tmp_path / "context")
    folder = context.path
    assert (folder / "code" / "0" / "pkg" / "__init__.py").exists()  # a folder: its contents
    assert (folder / "code" / "1" / "predictor.py").exists()  # a file: alone
    assert (folder / "model" / "weights" / "w.bin").read_bytes() == b"\0"
    served = json.loads((folder / "serving.json").read_text())
    assert served["model_path"] == f"{MODEL_DIR}/weights"
    assert served["flavor_options"]["code_paths"] == [f"{CODE_DIR}/0", f"{CODE_DIR}/1"]
    assert (served["host"], served["port"], served["workers"]) == ("0.0.0.0", 8080, 2)
    assert context.labels["dev.deployer.model.sha256"] == "ab" * 32
    assert context.labels["dev.deployer.model.flavor"] == "python"
    assert context.labels["dev.deployer.project"] == "custom"
    assert "org.opencontainers.image.revision" not in context.labels  # no source folder
    assert context.requirements == ["numpy==2.0.0", "orjson==3.10.0"]
    assert "FROM deployer-base:test" in (folder / "Dockerfile").read_text()
