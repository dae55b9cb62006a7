"""LightGBM and CatBoost flavours: tiny models trained here, detection by content, errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deployer.errors import MissingDependencyError
from deployer.flavors import ModelLoadError, detect_flavor, load_model
from deployer.flavors.base import TensorSpec

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]])


def _lgb_train(features: np.ndarray, labels: np.ndarray, **params: Any) -> Any:
    import lightgbm as lgb

    base = {"verbose": -1, "num_leaves": 4, "min_data_in_leaf": 5, "num_threads": 1}
    return lgb.train({**base, **params}, lgb.Dataset(features, labels), num_boost_round=4)


@pytest.fixture(scope="module")
def lgb_multiclass(tmp_path_factory: pytest.TempPathFactory, iris: Any) -> tuple[Path, Any]:
    """A 3-class booster saved with a .txt suffix (what the LightGBM docs use)."""
    features, labels = iris
    booster = _lgb_train(features, labels, objective="multiclass", num_class=3)
    path = tmp_path_factory.mktemp("lgb") / "model.txt"
    booster.save_model(str(path))
    return path, booster


# --- LightGBM -------------------------------------------------------------------------


def test_lightgbm_multiclass(lgb_multiclass: tuple[Path, Any]) -> None:
    path, booster = lgb_multiclass
    model = load_model("lightgbm", str(path), {"threads": 2})
    assert model.flavor == "lightgbm" and model.batchable
    assert model.signature.width == 4 and model.signature.datatype == "FP64"
    assert model.signature.outputs == (
        TensorSpec("predict", "FP64", (-1, 3)),
        TensorSpec("predict_proba", "FP64", (-1, 3)),
    )
    expected = booster.predict(ROWS)
    np.testing.assert_allclose(model.predict(ROWS, "predict", {}), expected)
    np.testing.assert_allclose(model.predict(ROWS, "predict_proba", {}), expected)
    assert model.predict(ROWS, "predict", {}).shape == (3, 3)


def test_lightgbm_binary_has_two_probability_columns(tmp_path: Path, iris: Any) -> None:
    features, labels = iris
    booster = _lgb_train(features[:, :3], (labels == 2).astype(int), objective="binary")
    path = tmp_path / "binary.lgb"  # any suffix: detected by content
    booster.save_model(str(path))
    assert detect_flavor(str(path)) == "lightgbm"
    model = load_model("lightgbm", str(path))
    assert model.signature.width == 3
    assert model.signature.outputs == (
        TensorSpec("predict", "FP64", (-1,)),
        TensorSpec("predict_proba", "FP64", (-1, 2)),
    )
    positive = booster.predict(ROWS[:, :3])
    np.testing.assert_allclose(model.predict(ROWS[:, :3], "predict", {}), positive)
    np.testing.assert_allclose(
        model.predict(ROWS[:, :3], "predict_proba", {}), np.column_stack((1 - positive, positive))
    )


def test_lightgbm_regressor(tmp_path: Path, iris: Any) -> None:
    features, _ = iris
    booster = _lgb_train(features[:, :3], features[:, 3], objective="regression")
    path = tmp_path / "reg.txt"
    booster.save_model(str(path))
    model = load_model("lightgbm", str(path))
    assert model.signature.outputs == (TensorSpec("predict", "FP64", (-1,)),)
    np.testing.assert_allclose(
        model.predict(ROWS[:, :3], "predict", {}), booster.predict(ROWS[:, :3])
    )


@pytest.mark.parametrize(
    "content",
    [
        "tree\nnot a model\n",  # first line right, no version/num_class lines
        "hello\nversion=v4\nnum_class=1\n",  # the lines, but not a model's first line
        "",
    ],
)
def test_text_that_is_not_a_lightgbm_model_is_not_detected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "model.txt"
    path.write_text(content)
    assert detect_flavor(str(path)) is None


def test_lightgbm_refuses_a_file_that_is_not_its_text_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n")
    with pytest.raises(ModelLoadError) as info:
        load_model("lightgbm", str(path))
    message = str(info.value)
    assert str(path) in message and "lightgbm flavour" in message
    assert "expected a LightGBM text model" in message


# --- CatBoost -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cb_classifier(tmp_path_factory: pytest.TempPathFactory, iris: Any) -> tuple[Path, Any]:
    from catboost import CatBoostClassifier

    features, labels = iris
    names = np.array(["setosa", "versicolor", "virginica"])[labels.astype(int)]
    classifier = CatBoostClassifier(
        iterations=5, depth=2, verbose=0, thread_count=1, allow_writing_files=False
    )
    classifier.fit(features, names)
    path = tmp_path_factory.mktemp("cb") / "model.cbm"
    classifier.save_model(str(path))
    return path, classifier


def test_catboost_classifier(cb_classifier: tuple[Path, Any]) -> None:
    path, classifier = cb_classifier
    assert detect_flavor(str(path)) == "catboost"
    model = load_model("catboost", str(path), {"threads": 1})
    assert model.flavor == "catboost"
    assert model.signature.width == 4
    assert model.signature.outputs == (
        TensorSpec("predict", "BYTES", (-1,)),
        TensorSpec("predict_proba", "FP64", (-1, 3)),
    )
    labels = model.predict(ROWS, "predict", {})
    assert labels.shape == (3,)
    np.testing.assert_array_equal(labels, classifier.predict(ROWS).reshape(-1))
    assert set(labels) <= {"setosa", "versicolor", "virginica"}
    np.testing.assert_allclose(
        model.predict(ROWS, "predict_proba", {}), classifier.predict_proba(ROWS)
    )


def test_catboost_regressor(tmp_path: Path, iris: Any) -> None:
    from catboost import CatBoostRegressor

    features, _ = iris
    regressor = CatBoostRegressor(
        iterations=5, depth=2, verbose=0, thread_count=1, allow_writing_files=False
    )
    regressor.fit(features[:, :3], features[:, 3])
    path = tmp_path / "reg.cbm"
    regressor.save_model(str(path))
    model = load_model("catboost", str(path))
    assert model.signature.width == 3
    assert model.signature.outputs == (TensorSpec("predict", "FP64", (-1,)),)
    np.testing.assert_allclose(
        model.predict(ROWS[:, :3], "predict", {}), regressor.predict(ROWS[:, :3])
    )


def test_catboost_with_categorical_features_is_refused(tmp_path: Path) -> None:
    from catboost import CatBoostClassifier

    rows = [["a", 1.0], ["b", 2.0], ["a", 3.0], ["b", 4.0]] * 5
    classifier = CatBoostClassifier(
        iterations=2, verbose=0, thread_count=1, allow_writing_files=False
    )
    classifier.fit(rows, [0, 1, 0, 1] * 5, cat_features=[0])
    path = tmp_path / "cat.cbm"
    classifier.save_model(str(path))
    with pytest.raises(ModelLoadError, match=r"categorical or text features \(columns \[0\]\)"):
        load_model("catboost", str(path))


# --- both -----------------------------------------------------------------------------


@pytest.mark.parametrize(("flavor", "name"), [("lightgbm", "model.txt"), ("catboost", "m.cbm")])
def test_corrupt_model_file_names_file_and_flavour(tmp_path: Path, flavor: str, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(
        b"tree\nversion=v4\nnum_class=1\n" if flavor == "lightgbm" else b"CBM1\x00junk"
    )
    with pytest.raises(ModelLoadError) as info:
        load_model(flavor, str(path))
    assert str(path) in str(info.value) and f"{flavor} flavour" in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("flavor", ["lightgbm", "catboost"])
def test_missing_runtime_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
    lgb_multiclass: tuple[Path, Any],
    cb_classifier: tuple[Path, Any],
    flavor: str,
) -> None:
    path = lgb_multiclass[0] if flavor == "lightgbm" else cb_classifier[0]
    monkeypatch.setitem(sys.modules, flavor, None)  # makes "import lightgbm" fail
    with pytest.raises(MissingDependencyError) as info:
        load_model(flavor, str(path))
    assert f"'{flavor}' package" in info.value.message
    assert info.value.hint == f"pip install 'deployer[{flavor}]'"
    assert info.value.exit_code == 3


@pytest.mark.parametrize("flavor", ["lightgbm", "catboost"])
def test_need_a_path(flavor: str) -> None:
    with pytest.raises(ModelLoadError, match=r"needs model\.path"):
        load_model(flavor, None)


# --- deployer init ----------------------------------------------------------------------


@pytest.mark.parametrize(("flavor", "name"), [("lightgbm", "model.txt"), ("catboost", "model.cbm")])
def test_cli_init_detects_and_validates(
    tmp_path: Path,
    lgb_multiclass: tuple[Path, Any],
    cb_classifier: tuple[Path, Any],
    flavor: str,
    name: str,
) -> None:
    import json
    import os
    import shutil
    import subprocess

    shutil.copy(lgb_multiclass[0] if flavor == "lightgbm" else cb_classifier[0], tmp_path / name)

    def deployer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deployer", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        )

    result = deployer("init", "--model", name)
    assert result.returncode == 0, result.stderr
    assert f"flavour {flavor}" in result.stderr
    assert f"flavor: {flavor}" in (tmp_path / "deployer.yaml").read_text()
    result = deployer("validate", "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["flavor"] == flavor
    assert report["signature"]["inputs"][0]["shape"] == [-1, 4]


def test_detection_never_opens_a_fifo(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "model.txt"
    os.mkfifo(fifo)
    assert detect_flavor(str(fifo)) is None  # would block forever if it opened the FIFO


def test_the_image_pins_the_host_versions_of_lightgbm_and_catboost() -> None:
    from importlib import metadata

    from deployer.image.wheelhouse import image_requirements

    requirements = image_requirements("lightgbm", ()) + image_requirements("catboost", ())
    assert f"lightgbm=={metadata.version('lightgbm')}" in requirements
    assert f"catboost=={metadata.version('catboost')}" in requirements
