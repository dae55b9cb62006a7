"""Model flavours: load, derive the signature, predict; detection and load errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deployer.errors import MissingDependencyError
from deployer.flavors import FLAVOR_NAMES, ModelLoadError, detect_flavor, load_model
from deployer.flavors.base import TensorSpec

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]])


PREDICTOR_MODULES = ("predictor", "testing_predictors", "bare_predictor")


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what the python flavour does to sys.path and sys.modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in PREDICTOR_MODULES:
        sys.modules.pop(name, None)


# --- sklearn --------------------------------------------------------------------------


def test_sklearn_classifier(sklearn_model_path: Path, sklearn_model: Any) -> None:
    model = load_model("sklearn", str(sklearn_model_path))
    assert model.flavor == "sklearn"
    assert model.batchable
    signature = model.signature
    assert signature.width == 4
    assert signature.datatype == "FP64"
    assert signature.methods == ("predict", "predict_proba")
    assert signature.outputs == (
        TensorSpec("predict", "INT64", (-1,)),
        TensorSpec("predict_proba", "FP64", (-1, 3)),
    )
    assert signature.to_dict()["inputs"] == [
        {"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}
    ]
    np.testing.assert_array_equal(model.predict(ROWS, "predict", {}), sklearn_model.predict(ROWS))
    np.testing.assert_allclose(
        model.predict(ROWS, "predict_proba", {}), sklearn_model.predict_proba(ROWS)
    )


def test_sklearn_regressor_offers_no_predict_proba(tmp_path: Path, iris: Any) -> None:
    import joblib
    from sklearn.linear_model import LinearRegression

    features, _ = iris
    regressor = LinearRegression().fit(features[:, :3], features[:, 3])
    joblib.dump(regressor, tmp_path / "reg.joblib")
    model = load_model("sklearn", str(tmp_path / "reg.joblib"))
    assert model.signature.width == 3
    assert model.signature.outputs == (TensorSpec("predict", "FP64", (-1,)),)
    np.testing.assert_allclose(
        model.predict(ROWS[:, :3], "predict", {}), regressor.predict(ROWS[:, :3])
    )


def test_sklearn_multi_output_regressor_shape(tmp_path: Path, iris: Any) -> None:
    import joblib
    from sklearn.tree import DecisionTreeRegressor

    features, _ = iris
    regressor = DecisionTreeRegressor(max_depth=2).fit(features[:, :2], features[:, 2:])
    joblib.dump(regressor, tmp_path / "tree.pkl")
    model = load_model("sklearn", str(tmp_path / "tree.pkl"))
    assert model.signature.outputs == (TensorSpec("predict", "FP64", (-1, 2)),)


def test_sklearn_string_classes(tmp_path: Path, iris: Any) -> None:
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    features, labels = iris
    names = np.array(["setosa", "versicolor", "virginica"])[labels]
    joblib.dump(DecisionTreeClassifier(max_depth=2).fit(features, names), tmp_path / "m.joblib")
    model = load_model("sklearn", str(tmp_path / "m.joblib"))
    assert model.signature.output("predict").datatype == "BYTES"
    assert model.predict(ROWS[:1], "predict", {}).tolist() == ["setosa"]


def test_sklearn_options_override_the_signature(sklearn_model_path: Path) -> None:
    model = load_model("sklearn", str(sklearn_model_path), {"datatype": "FP32", "width": 4})
    assert model.signature.datatype == "FP32"


def test_sklearn_object_without_predict(tmp_path: Path) -> None:
    import joblib

    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    with pytest.raises(ModelLoadError, match=r"dict\.joblib.*sklearn.*has no predict"):
        load_model("sklearn", str(tmp_path / "dict.joblib"))


# --- onnx -----------------------------------------------------------------------------


def test_onnx(onnx_model_path: Path, sklearn_model: Any) -> None:
    model = load_model("onnx", str(onnx_model_path))
    signature = model.signature
    assert (signature.width, signature.datatype, signature.input_name) == (4, "FP32", "input")
    assert signature.outputs == (
        TensorSpec("label", "INT64", (-1,)),
        TensorSpec("probabilities", "FP32", (-1, 3)),
    )
    labels = model.predict(ROWS, "label", {})  # float64 rows are cast to the graph's float32
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, sklearn_model.predict(ROWS))
    proba = model.predict(ROWS.astype(np.float32), "probabilities", {})
    np.testing.assert_allclose(proba, sklearn_model.predict_proba(ROWS), atol=1e-5)


# --- xgboost --------------------------------------------------------------------------


def test_xgboost(xgboost_model_path: Path) -> None:
    import xgboost as xgb

    model = load_model("xgboost", str(xgboost_model_path))
    assert model.signature.width == 4
    assert model.signature.datatype == "FP32"
    assert model.signature.outputs == (TensorSpec("predict", "FP32", (-1, 3)),)
    booster = xgb.Booster()
    booster.load_model(str(xgboost_model_path))
    rows = ROWS.astype(np.float32)
    np.testing.assert_allclose(
        model.predict(rows, "predict", {}), booster.predict(xgb.DMatrix(rows)), rtol=1e-6
    )


def test_xgboost_json_regressor(tmp_path: Path, iris: Any) -> None:
    import xgboost as xgb

    features, _ = iris
    train = xgb.DMatrix(features[:, :3], label=features[:, 3])
    booster = xgb.train({"max_depth": 2, "nthread": 1}, train, num_boost_round=3)
    booster.save_model(str(tmp_path / "reg.json"))
    assert detect_flavor(str(tmp_path / "reg.json")) == "xgboost"
    model = load_model("xgboost", str(tmp_path / "reg.json"))
    assert model.signature.width == 3
    assert model.signature.outputs == (TensorSpec("predict", "FP32", (-1,)),)
    assert model.predict(ROWS[:, :3].astype(np.float32), "predict", {}).shape == (3,)


# --- python (custom predictor) --------------------------------------------------------


@pytest.mark.usefixtures("isolated_imports")
def test_custom_predictor_example(
    custom_example_dir: Path, custom_predictor_options: dict[str, Any]
) -> None:
    weights = json.loads((custom_example_dir / "weights.json").read_text())
    model = load_model("python", str(custom_example_dir / "weights.json"), custom_predictor_options)
    assert model.flavor == "python"
    assert model.batchable
    assert model.signature.width == 4
    assert model.signature.datatype == "FP64"
    assert model.signature.methods == ("predict", "predict_proba")
    expected = 1 / (1 + np.exp(-(ROWS @ np.array(weights["weights"]) + weights["bias"])))
    np.testing.assert_allclose(model.predict(ROWS, "predict_proba", {}), expected)
    assert model.predict(ROWS, "predict", {}).tolist() == (expected >= 0.5).astype(float).tolist()
    assert model.predict(ROWS, "predict", {"threshold": 0.0}).tolist() == [1.0, 1.0, 1.0]
    # A folder works as model.path too.
    folder = load_model("python", str(custom_example_dir), custom_predictor_options)
    np.testing.assert_allclose(folder.predict(ROWS, "predict_proba", {}), expected)


@pytest.mark.usefixtures("isolated_imports")
def test_custom_predictor_options_override_its_signature(
    custom_example_dir: Path, custom_predictor_options: dict[str, Any]
) -> None:
    options = {**custom_predictor_options, "outputs": ["predict_proba"], "width": 4}
    model = load_model("python", str(custom_example_dir), options)
    assert model.signature.methods == ("predict_proba",)


@pytest.mark.usefixtures("isolated_imports")
def test_custom_predictor_without_signature_or_load(tmp_path: Path) -> None:
    (tmp_path / "bare_predictor.py").write_text(
        "class Doubler:\n    def predict(self, rows, parameters):\n        return rows[:, 0] * 2\n"
    )
    options = {"predictor": "bare_predictor:Doubler", "code_paths": [str(tmp_path)]}
    model = load_model("python", None, options)
    assert model.signature.width is None
    assert model.signature.datatype == "FP64"
    assert model.signature.methods == ("predict",)
    assert not model.batchable
    assert model.predict(np.array([[2.0, 9.0]]), "predict", {}).tolist() == [4.0]


@pytest.mark.usefixtures("isolated_imports")
@pytest.mark.parametrize(
    ("predictor", "fragment"),
    [
        ("no_colon", "not of the form 'module:Class'"),
        ("testing_predictors:Missing", "has no class 'Missing'"),
        ("no_such_module_here:Predictor", "No module named 'no_such_module_here'"),
    ],
)
def test_custom_predictor_import_errors(
    testing_predictor_options: dict[str, Any], predictor: str, fragment: str
) -> None:
    options = {**testing_predictor_options, "predictor": predictor}
    with pytest.raises(ModelLoadError, match="python flavour") as info:
        load_model("python", None, options)
    assert fragment in str(info.value)


# --- detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "flavor"),
    [
        ("model.joblib", "sklearn"),
        ("model.pkl", "sklearn"),
        ("MODEL.PICKLE", "sklearn"),
        ("model.onnx", "onnx"),
        ("model.ubj", "xgboost"),
        ("model.xgb", "xgboost"),
        ("model.bst", "xgboost"),
        ("model.cbm", "catboost"),
        ("model.bin", None),
        ("model", None),
        ("predictor.py", None),
    ],
)
def test_detect_flavor_by_suffix(name: str, flavor: str | None) -> None:
    assert detect_flavor(name) == flavor


@pytest.mark.parametrize(
    ("content", "flavor"),
    [
        ('{"learner": {"attributes": {}}, "version": [2, 0, 0]}', "xgboost"),
        ('{"weights": [1, 2], "bias": 0}', None),
        ("[1, 2, 3]", None),
        ("42", None),
        ("not json at all", None),
    ],
)
def test_detect_flavor_of_json_by_content(tmp_path: Path, content: str, flavor: str | None) -> None:
    path = tmp_path / "model.json"
    path.write_text(content)
    assert detect_flavor(str(path)) == flavor


def test_detect_flavor_of_the_examples(
    sklearn_model_path: Path, onnx_model_path: Path, xgboost_model_path: Path
) -> None:
    assert detect_flavor(str(sklearn_model_path)) == "sklearn"
    assert detect_flavor(str(onnx_model_path)) == "onnx"
    assert detect_flavor(str(xgboost_model_path)) == "xgboost"
    assert detect_flavor("examples/custom/weights.json") is None


# --- load errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavor", "name"),
    [("sklearn", "model.joblib"), ("onnx", "model.onnx"), ("xgboost", "model.ubj")],
)
def test_corrupt_model_file(tmp_path: Path, flavor: str, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x00garbage, not a model\xff" * 8)
    with pytest.raises(ModelLoadError) as info:
        load_model(flavor, str(path))
    message = str(info.value)
    assert str(path) in message
    assert f"{flavor} flavour" in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("flavor", ["sklearn", "onnx", "xgboost"])
def test_missing_model_file(tmp_path: Path, flavor: str) -> None:
    path = tmp_path / "absent.bin"
    with pytest.raises(ModelLoadError, match=f"{path} does not exist .flavour {flavor}."):
        load_model(flavor, str(path))


@pytest.mark.parametrize("flavor", ["sklearn", "onnx", "xgboost"])
def test_file_flavours_need_a_path(flavor: str) -> None:
    with pytest.raises(ModelLoadError, match=r"needs model\.path"):
        load_model(flavor, None)


@pytest.mark.parametrize(
    ("flavor", "module", "extra", "fixture"),
    [
        ("sklearn", "joblib", "sklearn", "sklearn_model_path"),
        ("onnx", "onnxruntime", "onnx", "onnx_model_path"),
        ("xgboost", "xgboost", "xgboost", "xgboost_model_path"),
    ],
)
def test_missing_optional_dependency_names_the_extra(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    flavor: str,
    module: str,
    extra: str,
    fixture: str,
) -> None:
    path = request.getfixturevalue(fixture)
    monkeypatch.setitem(sys.modules, module, None)  # makes "import module" fail
    with pytest.raises(MissingDependencyError) as info:
        load_model(flavor, str(path))
    error = info.value
    assert f"'{module}' package" in error.message
    assert f"{flavor} flavour" in error.message
    assert error.hint == f"pip install 'deployer[{extra}]'"
    assert error.exit_code == 3


def test_unknown_flavour() -> None:
    expected = (
        r"unknown flavour 'torch'; expected one of "
        r"sklearn, onnx, xgboost, python, pytorch, lightgbm, catboost, mlflow, transformers"
    )
    with pytest.raises(ValueError, match=expected):
        load_model("torch", "model.pt")
    assert FLAVOR_NAMES[:4] == ("sklearn", "onnx", "xgboost", "python")
    assert {"pytorch", "lightgbm", "catboost", "mlflow", "transformers"} <= set(FLAVOR_NAMES)


def test_two_projects_predictor_modules_of_one_name_each_load_their_own(tmp_path: Path) -> None:
    """A release script loading two projects whose predictors are both ``predictor.py``:
    the second gets its own module, not the first's cached one."""
    answers = {}
    for answer in (1, 2):
        folder = tmp_path / f"project{answer}"
        folder.mkdir()
        (folder / "predictor.py").write_text(
            "class Predictor:\n"
            "    def predict(self, rows, parameters):\n"
            f"        return [{answer}] * len(rows)\n"
        )
        options = {"predictor": "predictor:Predictor", "code_paths": [str(folder)]}
        loaded = load_model("python", None, options)
        answers[answer] = list(loaded.predict(np.zeros((2, 4)), loaded.signature.methods[0], {}))
    sys.modules.pop("predictor", None)
    assert answers == {1: [1, 1], 2: [2, 2]}
