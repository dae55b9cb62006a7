"""MLflow models: the MLmodel read without mlflow, native mapping, the pyfunc fallback,
the recorded signature and input example, and ``models:/`` through a local registry.

The models are made in subprocesses (examples/mlflow/make_model.py, and a registry
script): MLflow's logging stays out of the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deployer.errors import DeployerError, MissingDependencyError, UsageError
from deployer.flavors import ModelLoadError, detect_flavor, image_needs, load_model
from deployer.flavors.base import TensorSpec
from deployer.flavors.mlflow import read_mlmodel, resolve

REPO = Path(__file__).resolve().parents[2]
MAKE_MODEL = REPO / "examples/mlflow/make_model.py"
ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])


def _run(*args: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mlflow")
    _run(str(MAKE_MODEL), str(folder / "pyfunc"), "--kind", "pyfunc")
    _run(str(MAKE_MODEL), str(folder / "sklearn"), "--kind", "sklearn")
    return folder


def _write_mlmodel(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(textwrap.dedent(text))
    return folder


# --- detection ------------------------------------------------------------------------


def test_detects_the_folder_its_mlmodel_and_registry_uris(models: Path, tmp_path: Path) -> None:
    assert detect_flavor(str(models / "sklearn")) == "mlflow"
    assert detect_flavor(str(models / "sklearn" / "MLmodel")) == "mlflow"
    assert detect_flavor("models:/iris/1") == "mlflow"
    assert detect_flavor(str(tmp_path)) is None  # a folder without an MLmodel


# --- native mapping -------------------------------------------------------------------


def test_sklearn_model_is_served_by_our_sklearn_flavour(models: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = load_model("mlflow", str(models / "sklearn"))
    assert model.flavor == "mlflow"
    assert model.extra["backend"] == "sklearn" and model.extra["mlflow_flavor"] == "sklearn"
    assert isinstance(model.extra["model"], LogisticRegression)  # our sklearn loader ran
    assert model.batchable
    assert model.signature.width == 4
    assert model.signature.outputs == (
        TensorSpec("predict", "INT64", (-1,)),
        TensorSpec("predict_proba", "FP64", (-1, 3)),
    )
    np.testing.assert_array_equal(model.predict(ROWS, "predict", {}), [0, 2])
    # MLflow's input example (3 rows, columns in the signature's order) is the smoke sample
    assert model.extra["sample"] == [
        [5.1, 3.5, 1.4, 0.2],
        [5.0, 2.0, 3.5, 1.0],
        [6.9, 3.2, 5.7, 2.3],
    ]
    # the image carries the sklearn runtime, not MLflow
    assert image_needs("mlflow", str(models / "sklearn")) == ("sklearn", ())


def test_lightgbm_booster_saved_by_mlflow_is_served_natively(tmp_path: Path, iris: Any) -> None:
    import lightgbm as lgb

    features, labels = iris
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 4}
    booster = lgb.train(params, lgb.Dataset(features, labels), num_boost_round=2)
    folder = _write_mlmodel(
        tmp_path / "lgb",
        """\
        flavors:
          lightgbm: {data: model.lgb, model_class: lightgbm.basic.Booster}
          python_function: {loader_module: mlflow.lightgbm, data: model.lgb}
        """,
    )
    booster.save_model(str(folder / "model.lgb"))
    model = load_model("mlflow", str(folder))
    assert model.extra["backend"] == "lightgbm"
    np.testing.assert_allclose(model.predict(ROWS, "predict", {}), booster.predict(ROWS))
    assert image_needs("mlflow", str(folder)) == ("lightgbm", ())


@pytest.mark.parametrize(
    ("flavors", "expected"),
    [
        ("sklearn: {pickled_model: m.pkl, serialization_format: cloudpickle}", "sklearn"),
        ("sklearn: {pickled_model: m.pkl, serialization_format: skops}", "pyfunc"),
        ("xgboost: {data: model.xgb}", "xgboost"),
        ("xgboost: {data: model.pkl}", "sklearn"),  # MLflow pickles XGBClassifier & co
        ("lightgbm: {data: model.pkl}", "sklearn"),
        ("catboost: {data: model.cb}", "catboost"),
        ("onnx: {data: model.onnx}", "onnx"),
        ("pytorch: {model_data: data}", "pyfunc"),
        ("transformers: {}", "pyfunc"),
        ("keras: {}", "pyfunc"),
    ],
)
def test_the_mapping_table(tmp_path: Path, flavors: str, expected: str) -> None:
    folder = _write_mlmodel(
        tmp_path,
        f"flavors:\n  {flavors}\n  python_function: {{loader_module: mlflow.x}}\n",
    )
    backend = resolve(read_mlmodel(str(folder)))
    assert backend.flavor == expected
    if expected == "pyfunc" and "sklearn" not in flavors:
        assert "not there yet" in backend.note or "being added" in backend.note


def test_a_model_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = _write_mlmodel(
        tmp_path / "m", "flavors:\n  onnx: {data: ../../etc/passwd}\n  python_function: {}\n"
    )
    with pytest.raises(ModelLoadError, match=r"flavors\.onnx\.data: '../../etc/passwd' leaves"):
        load_model("mlflow", str(folder))


def test_no_servable_flavour_and_no_pyfunc(tmp_path: Path) -> None:
    folder = _write_mlmodel(tmp_path / "m", "flavors:\n  spark: {model_data: sparkml}\n")
    with pytest.raises(ModelLoadError) as info:
        load_model("mlflow", str(folder))
    message = str(info.value)
    assert str(folder / "MLmodel") in message and "MLflow flavours spark" in message
    assert "no python_function flavour" in message


def test_broken_mlmodel_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(DeployerError) as info:
        load_model("mlflow", str(folder))
    assert str(folder / "MLmodel") in str(info.value)
    assert info.value.exit_code == 2


def test_broken_native_file_names_it_and_what_was_tried(tmp_path: Path) -> None:
    folder = _write_mlmodel(
        tmp_path / "m", "flavors:\n  sklearn: {pickled_model: model.pkl}\n  python_function: {}\n"
    )
    (folder / "model.pkl").write_bytes(b"\x00 not a pickle")
    with pytest.raises(ModelLoadError) as info:
        load_model("mlflow", str(folder))
    message = str(info.value)
    assert str(folder / "model.pkl") in message
    assert "MLflow flavour sklearn, loaded with deployer's sklearn flavour" in message


# --- the pyfunc fallback ----------------------------------------------------------------


def test_custom_pyfunc_is_served_by_mlflow(models: Path) -> None:
    model = load_model("mlflow", str(models / "pyfunc"))
    assert model.extra["backend"] == "pyfunc"
    assert not model.batchable  # a pyfunc may look across rows
    signature = model.signature
    assert signature.width == 4 and signature.datatype == "FP64"
    assert signature.outputs == (TensorSpec("predict", "BYTES", (-1,)),)
    assert list(model.predict(ROWS, "predict", {})) == ["setosa", "virginica"]
    assert len(model.extra["sample"]) == 3


def test_pyfunc_image_carries_mlflow_skinny_and_the_models_requirements(models: Path) -> None:
    import sklearn

    runtime, requirements = image_needs("mlflow", str(models / "pyfunc"))
    assert runtime == "mlflow"
    assert requirements[0].startswith("mlflow-skinny==")  # the version that saved it
    assert not any(r.startswith("mlflow==") for r in requirements)
    assert f"scikit-learn=={sklearn.__version__}" in requirements


def test_pyfunc_requirements_drop_pip_options(tmp_path: Path) -> None:
    folder = _write_mlmodel(tmp_path / "m", "flavors:\n  python_function: {}\n")
    (folder / "requirements.txt").write_text(
        "--index-url https://example.invalid/simple\n-r other.txt\nmlflow\nnumpy<3  # pin\n"
    )
    assert image_needs("mlflow", str(folder)) == (
        "mlflow",
        ("mlflow-skinny>=2.9,<4", "pandas>=2,<4", "cloudpickle>=2,<4", "numpy<3"),
    )


def test_pyfunc_without_mlflow_names_the_extra(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    with pytest.raises(MissingDependencyError) as info:
        load_model("mlflow", str(models / "pyfunc"))
    assert info.value.hint == "pip install 'deployer[mlflow]'"
    assert "mlflow flavour" in info.value.message


def test_typed_columns_reach_the_pyfunc_with_their_types(tmp_path: Path) -> None:
    """A long and a double column: the frame the model sees has int64 and float64."""
    folder = tmp_path / "typed"
    script = f"""
import mlflow.pyfunc, pandas as pd
from mlflow.models import infer_signature

class Types(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [str(model_input[c].dtype) for c in model_input.columns][:1] * len(model_input)

frame = pd.DataFrame({{"count": [1, 2], "price": [0.5, 1.5]}})
mlflow.pyfunc.save_model({str(folder)!r}, python_model=Types(),
    signature=infer_signature(frame, ["x", "y"]), pip_requirements=["pandas"])
"""
    _run("-c", script)
    model = load_model("mlflow", str(folder))
    assert model.signature.width == 2 and model.signature.datatype == "FP64"
    assert list(model.predict(np.array([[3.0, 2.5]]), "predict", {})) == ["int64"]
    # NaN cannot be a long: refused as the model's input error (the server answers 400)
    from deployer.serving.rejections import is_input_rejection

    with pytest.raises(ValueError, match="column 'count', which MLflow's signature types INT64"):
        model.predict(np.array([[np.nan, 2.5]]), "predict", {})
    with pytest.raises(ValueError) as info:
        model.predict(np.array([[np.inf, 2.5]]), "predict", {})
    assert is_input_rejection(info.value)


# --- deployer init, the release sample, the registry -----------------------------------


def test_init_detects_an_mlflow_folder_and_release_uses_its_example(
    models: Path, tmp_path: Path
) -> None:
    from deployer import Project

    project = Project.init(models / "sklearn", tmp_path / "deployer.yaml")
    assert project.flavor == "mlflow"
    text = (tmp_path / "deployer.yaml").read_text()
    assert "flavor: mlflow" in text and "only deploy models you trust" in text
    release = project.release(None)  # type: ignore[arg-type]  # the image is not used
    assert release.sample[0] == [5.1, 3.5, 1.4, 0.2] and len(release.sample) == 3
    assert "scikit-learn>=1.3,<2" in project.model_requirements()


@pytest.fixture
def registry(tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local file-store tracking URI with the sklearn model registered as iris-test v1."""
    uri = (tmp_path / "store").as_uri()
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "true"}
    script = f"""
import mlflow
with mlflow.start_run() as run:
    mlflow.log_artifacts({str(models / "sklearn")!r}, artifact_path="model")
mlflow.register_model(f"runs:/{{run.info.run_id}}/model", "iris-test")
"""
    _run("-c", script, env=env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return uri


def test_init_from_the_registry_downloads_the_model(registry: str, tmp_path: Path) -> None:
    from deployer import Project

    project_dir = tmp_path / "project"
    project_dir.mkdir()
    project = Project.init("models:/iris-test/1", project_dir / "deployer.yaml")
    assert project.flavor == "mlflow"
    assert (project_dir / "mlflow-iris-test-1" / "MLmodel").is_file()
    assert "path: mlflow-iris-test-1" in (project_dir / "deployer.yaml").read_text()
    np.testing.assert_array_equal(project.load_model().predict(ROWS, "predict", {}), [0, 2])


def test_registry_uri_without_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployer import Project

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(UsageError, match="MLFLOW_TRACKING_URI is not set") as info:
        Project.init("models:/iris/1", tmp_path / "deployer.yaml")
    assert info.value.exit_code == 2


def test_unknown_registered_model_names_uri_and_store(registry: str, tmp_path: Path) -> None:
    from deployer import Project

    with pytest.raises(UsageError) as info:
        Project.init("models:/absent/3", tmp_path / "deployer.yaml")
    assert "could not download models:/absent/3 from " + registry in str(info.value)


def test_cli_init_with_a_registry_uri_and_no_tracking_uri(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "init", "--model", "models:/iris/1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert result.returncode == 2
    assert "models:/iris/1 is a model registry URI, but MLFLOW_TRACKING_URI is not set" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "deployer.yaml").exists()


@pytest.mark.parametrize(
    "example",
    [
        "not json",
        '{"columns": ["a"], "data": [[1.0]]}',  # one column for a 4-feature model
        '{"inputs": 3}',
    ],
)
def test_an_unusable_input_example_leaves_the_zero_sample(
    models: Path, tmp_path: Path, example: str
) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(models / "sklearn", folder)
    (folder / "input_example.json").write_text(example)
    model = load_model("mlflow", str(folder))
    assert "sample" not in model.extra
    assert model.signature.width == 4
