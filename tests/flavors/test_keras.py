"""The keras flavour: a Keras 3 ``.keras`` file and a TensorFlow SavedModel folder with
their own signatures (two named inputs, two named outputs), detection, the backend the
image carries, errors naming the file and the fix; and the model served over OIP v2 and
Vertex by a real ``python -m deployer.serving``, micro-batched requests included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import ServerFactory, load_example, serving_settings

from deployer.errors import MissingDependencyError
from deployer.flavors import ModelLoadError, detect_flavor, image_needs, load_model
from deployer.serving import routes

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # this process: the default backend
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")
example = load_example("keras/create.py")

SIGNATURE = {
    "inputs": [
        {"name": "features", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "scale", "datatype": "FP32", "shape": [-1, 1]},
    ],
    "outputs": [
        {"name": "logits", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keras")
    example.main(folder)
    return folder


def expected(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    result = example.build().predict_on_batch(data)
    return {k: np.asarray(v) for k, v in result.items()}


# --- detection and image needs -------------------------------------------------------------


def test_detects_keras_files_and_saved_model_folders(models: Path, tmp_path: Path) -> None:
    assert detect_flavor("model.keras") == "keras"
    assert detect_flavor("MODEL.KERAS") == "keras"
    assert detect_flavor(str(models / "saved_model")) == "keras"
    assert detect_flavor(str(tmp_path)) is None  # an empty folder is nothing
    # an MLflow model folder stays mlflow even when it holds a SavedModel
    mlflow_folder = tmp_path / "mlflow"
    mlflow_folder.mkdir()
    (mlflow_folder / "saved_model.pb").write_bytes(b"")
    (mlflow_folder / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    assert detect_flavor(str(mlflow_folder)) == "mlflow"


def test_the_image_carries_keras_and_the_chosen_backend_only(models: Path) -> None:
    keras_file = str(models / "model.keras")
    assert image_needs("keras", keras_file) == ("keras", ("tensorflow-cpu>=2.16,<3",))
    assert image_needs("keras", keras_file, {"backend": "torch"}) == (
        "keras",
        ("torch>=2.4,<3",),
    )
    assert image_needs("keras", keras_file, {"backend": "jax"})[1][0].startswith("jax")
    # a SavedModel needs TensorFlow whatever the options say
    assert image_needs("keras", str(models / "saved_model"), {"backend": "torch"}) == (
        "keras",
        ("tensorflow-cpu>=2.16,<3",),
    )


def test_project_requirements_follow_the_backend(models: Path, tmp_path: Path) -> None:
    from deployer import Project

    (tmp_path / "model.keras").write_bytes((models / "model.keras").read_bytes())
    text = "name: tiny\nmodel:\n  path: model.keras\n  flavor: keras\n"
    (tmp_path / "deployer.yaml").write_text(text + "  options:\n    backend: torch\n")
    requirements = Project.load(tmp_path / "deployer.yaml").model_requirements()
    assert "torch>=2.4,<3" in requirements
    assert not [r for r in requirements if r.startswith("tensorflow")]
    (tmp_path / "deployer.yaml").write_text(text)
    requirements = Project.load(tmp_path / "deployer.yaml").model_requirements()
    assert requirements == ("tensorflow-cpu>=2.16,<3",)


# --- loading -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["model.keras", "saved_model"])
def test_the_model_carries_its_signature(models: Path, path: str) -> None:
    model = load_model("keras", str(models / path))
    assert model.flavor == "keras"
    assert model.signature.to_dict() == SIGNATURE
    assert model.batchable
    data = example.example_inputs(3)
    result = model.predict(data, "logits", {})
    for name, want in expected(data).items():
        np.testing.assert_allclose(result[name], want, rtol=1e-5, atol=1e-6)


def test_a_single_output_model_answers_one_array(tmp_path: Path) -> None:
    inputs = keras.Input(shape=(3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="score")(inputs))
    model.save(tmp_path / "one.keras")
    loaded = load_model("keras", str(tmp_path / "one.keras"))
    assert loaded.signature.to_dict() == {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1, 2]}],
    }
    rows = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_allclose(
        loaded.predict({"x": rows}, "score", {}), model.predict_on_batch(rows), rtol=1e-5
    )


def test_not_a_keras_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError) as info:
        load_model("keras", str(path))
    assert str(path) in str(info.value)
    assert "model.save" in str(info.value)


def test_a_folder_without_saved_model_pb_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("keras", str(tmp_path))
    assert f"{tmp_path} is a folder without saved_model.pb" in str(info.value)


def test_a_saved_model_without_serving_default_says_so(tmp_path: Path) -> None:
    import tensorflow as tf

    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, str(tmp_path / "bare"), signatures={})
    with pytest.raises(ModelLoadError) as info:
        load_model("keras", str(tmp_path / "bare"))
    assert "no serving_default signature" in str(info.value)
    assert str(tmp_path / "bare") in str(info.value)


def test_an_unknown_backend_is_refused(models: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("keras", str(models / "model.keras"), {"backend": "theano"})
    assert "model.options.backend is 'theano'" in str(info.value)
    assert "tensorflow, torch, jax" in str(info.value)


def test_another_backend_than_the_running_one_is_refused(models: Path) -> None:
    assert keras.config.backend() == "tensorflow"
    with pytest.raises(ModelLoadError) as info:
        load_model("keras", str(models / "model.keras"), {"backend": "torch"})
    assert "already running with the tensorflow backend" in str(info.value)


def test_missing_tensorflow_names_the_extra(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError) as info:
        load_model("keras", str(models / "saved_model"))
    assert "'tensorflow' package" in info.value.message
    assert info.value.hint == "pip install 'deployer[keras]'"


BACKEND_PROBE = """
import json, sys
import numpy as np
from deployer.flavors import load_model
options = json.loads(sys.argv[2])
model = load_model("keras", sys.argv[1], options)
data = {"features": np.full((2, 4), 0.5, np.float32), "scale": np.ones((2, 1), np.float32)}
result = model.predict(data, "logits", {})
if options.get("backend") == "torch":
    import torch
    threads = torch.get_num_threads()
else:
    import tensorflow as tf
    threads = tf.config.threading.get_intra_op_parallelism_threads()
print("RESULT " + json.dumps({
    "probabilities": result["probabilities"].tolist(),
    "threads": threads,
    "tensorflow": "tensorflow" in sys.modules,
}))
"""


def probe(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Load and predict in a fresh process (Keras picks its backend once per process)."""
    done = subprocess.run(
        [sys.executable, "-c", BACKEND_PROBE, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stderr
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))


def test_the_torch_backend_loads_without_tensorflow(models: Path) -> None:
    pytest.importorskip("torch")
    answer = probe(models / "model.keras", {"backend": "torch", "threads": 2})
    assert answer["tensorflow"] is False
    assert answer["threads"] == 2
    data = {"features": np.full((2, 4), 0.5, np.float32), "scale": np.ones((2, 1), np.float32)}
    np.testing.assert_allclose(answer["probabilities"], expected(data)["probabilities"], rtol=1e-5)


def test_threads_option_sets_tensorflow_threads(models: Path) -> None:
    assert probe(models / "saved_model", {"threads": 2})["threads"] == 2


# --- init and validate ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["model.keras", "saved_model"])
def test_init_detects_the_flavour_and_validate_loads_it(
    models: Path, tmp_path: Path, path: str
) -> None:
    import shutil

    source = models / path
    if source.is_dir():
        shutil.copytree(source, tmp_path / path)
    else:
        shutil.copy(source, tmp_path / path)
    deployer = [sys.executable, "-m", "deployer"]
    init = subprocess.run(
        [*deployer, "init", "--model", path], cwd=tmp_path, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    assert "flavor: keras" in (tmp_path / "deployer.yaml").read_text()
    check = subprocess.run(
        [*deployer, "validate", "-o", "json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert '"name": "scale"' in check.stdout


def test_init_of_a_broken_file_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"nope")
    init = subprocess.run(
        [sys.executable, "-m", "deployer", "init", "--model", "model.keras"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert init.returncode != 0
    assert "model.keras is not a Keras 3 model file" in init.stderr
    assert "Traceback" not in init.stderr


# --- served --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["model.keras", "saved_model"])
def served(
    request: pytest.FixtureRequest, start_server: ServerFactory, models: Path
) -> Iterator[httpx.Client]:
    settings = serving_settings(
        "keras", models / request.param, model_name="tiny", max_batch_wait_ms=20.0
    )
    server = start_server(settings)
    yield server.client
    server.stop()


def oip_body(data: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": list(a.shape), "data": a.ravel().tolist()}
            for n, a in data.items()
        ]
    }


def test_served_over_oip_v2(served: httpx.Client) -> None:
    data = example.example_inputs(2)
    answer = served.post("/v2/models/tiny/infer", json=oip_body(data))
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["logits"]["shape"] == [2, 3]
    want = expected(data)
    for name in ("logits", "probabilities"):
        np.testing.assert_allclose(
            np.reshape(outputs[name]["data"], (2, 3)), want[name], rtol=1e-5, atol=1e-6
        )
    wrong = {**data, "features": np.zeros((2, 5), dtype=np.float32)}
    refused = served.post("/v2/models/tiny/infer", json=oip_body(wrong))
    assert refused.status_code == 400
    assert "'features'" in refused.json()["error"] and "[-1, 4]" in refused.json()["error"]


def test_served_over_vertex(served: httpx.Client) -> None:
    data = example.example_inputs(2)
    instances = [
        {"features": data["features"][i].tolist(), "scale": data["scale"][i].tolist()}
        for i in range(2)
    ]
    answer = served.post(routes.VERTEX_PREDICT, json={"instances": instances})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert set(predictions[0]) == {"logits", "probabilities"}
    want = expected(data)
    np.testing.assert_allclose(
        [p["probabilities"] for p in predictions], want["probabilities"], rtol=1e-5, atol=1e-6
    )
    missing = served.post(routes.VERTEX_PREDICT, json={"instances": [{"features": [0.0] * 4}]})
    assert missing.status_code == 400 and "'scale'" in missing.json()["error"]


def test_concurrent_requests_are_batched_and_answer_as_one_at_a_time(
    served: httpx.Client,
) -> None:
    generator = np.random.default_rng(7)
    requests = [
        {
            "features": generator.random((1 + i % 3, 4), dtype=np.float32),
            "scale": np.full((1 + i % 3, 1), 1.0 + i, dtype=np.float32),
        }
        for i in range(12)
    ]

    def send(data: dict[str, np.ndarray]) -> dict[str, Any]:
        answer = served.post("/v2/models/tiny/infer", json=oip_body(data))
        assert answer.status_code == 200, answer.text
        return {o["name"]: o for o in answer.json()["outputs"]}

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, requests))
    for data, outputs in zip(requests, answers, strict=True):
        rows = len(data["features"])
        assert outputs["probabilities"]["shape"] == [rows, 3]
        np.testing.assert_allclose(
            np.reshape(outputs["probabilities"]["data"], (rows, 3)),
            expected(data)["probabilities"],
            rtol=1e-5,
            atol=1e-6,
        )
