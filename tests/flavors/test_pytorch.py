"""The pytorch flavour: TorchScript (.pt) with a declared signature, torch.export programs
(.pt2) with their own, named inputs and outputs, errors naming the file and the fix; and
the model served over OIP v2 and Vertex by a real ``python -m deployer.serving``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import ServerFactory, load_example, serving_settings

from deployer.errors import MissingDependencyError
from deployer.flavors import ModelLoadError, detect_flavor, load_model
from deployer.serving import routes

torch = pytest.importorskip("torch")
example = load_example("pytorch/create.py")

SIGNATURE = {
    "inputs": [
        {"name": "scale", "datatype": "FP32", "shape": [-1]},  # not forward's order
        {"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]},
    ],
    "outputs": ["logits", "probabilities"],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("torch")
    example.main(folder)
    return folder


def inputs(batch: int = 3) -> dict[str, np.ndarray]:
    image, scale = example.example_inputs(batch)
    return {"image": image.numpy(), "scale": (scale * 2).numpy()}


def expected(batch: int = 3) -> dict[str, np.ndarray]:
    image, scale = example.example_inputs(batch)
    with torch.inference_mode():
        result = example.build()(image, scale * 2)
    return {k: v.numpy() for k, v in result.items()}


def test_detects_torchscript_and_exported_programs() -> None:
    assert detect_flavor("model.pt") == "pytorch"
    assert detect_flavor("MODEL.PT2") == "pytorch"


def test_exported_program_carries_its_signature(models: Path) -> None:
    model = load_model("pytorch", str(models / "model.pt2"))
    assert model.signature.to_dict() == {
        "inputs": [
            {"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]},
            {"name": "scale", "datatype": "FP32", "shape": [-1]},
        ],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }
    result = model.predict(inputs(), "logits", {})
    for name, want in expected().items():
        np.testing.assert_allclose(result[name], want, rtol=1e-5)


def test_torchscript_takes_the_declared_signature_by_name(models: Path) -> None:
    model = load_model("pytorch", str(models / "model.pt"), SIGNATURE)
    assert [s.name for s in model.signature.inputs] == ["image", "scale"]  # forward's order
    assert model.signature.methods == ("logits", "probabilities")
    result = model.predict(inputs(), "logits", {})
    for name, want in expected().items():
        np.testing.assert_allclose(result[name], want, rtol=1e-5)


def test_torchscript_without_a_signature_says_what_to_add(models: Path) -> None:
    path = models / "model.pt"
    with pytest.raises(ModelLoadError) as info:
        load_model("pytorch", str(path))
    message = str(info.value)
    assert str(path) in message
    assert "forward takes image, scale" in message
    assert "signature:\n    inputs:\n      - {name: image" in message


def test_torchscript_with_other_input_names(models: Path) -> None:
    signature = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]}
    with pytest.raises(ModelLoadError, match=r"names x, but forward.. of .* takes image, scale"):
        load_model("pytorch", str(models / "model.pt"), signature)


def test_a_torch_save_pickle_is_not_torchscript(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(example.build().state_dict(), path)
    with pytest.raises(ModelLoadError) as info:
        load_model("pytorch", str(path), SIGNATURE)
    assert f"{path} is not a TorchScript file" in str(info.value)
    assert "torch.jit.save" in str(info.value)


def test_threads_option_sets_torch_threads(models: Path) -> None:
    before = torch.get_num_threads()
    try:
        load_model("pytorch", str(models / "model.pt2"), {"threads": 2})
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_missing_torch_names_the_extra(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError) as info:
        load_model("pytorch", str(models / "model.pt2"))
    assert "'torch' package" in info.value.message
    assert info.value.hint == "pip install 'deployer[torch]'"


def test_init_detects_the_flavour_and_validate_loads_it(models: Path, tmp_path: Path) -> None:
    (tmp_path / "model.pt2").write_bytes((models / "model.pt2").read_bytes())
    deployer = [sys.executable, "-m", "deployer"]
    init = subprocess.run(
        [*deployer, "init", "--model", "model.pt2"], cwd=tmp_path, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    assert "flavor: pytorch" in (tmp_path / "deployer.yaml").read_text()
    check = subprocess.run(
        [*deployer, "validate", "-o", "json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert '"name": "scale"' in check.stdout


def test_init_of_torchscript_fails_naming_the_file_and_the_fix(
    models: Path, tmp_path: Path
) -> None:
    (tmp_path / "model.pt").write_bytes((models / "model.pt").read_bytes())
    init = subprocess.run(
        [sys.executable, "-m", "deployer", "init", "--model", "model.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert init.returncode != 0
    assert "model.pt is TorchScript" in init.stderr
    assert "Traceback" not in init.stderr


# --- served -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(start_server: ServerFactory, models: Path) -> Iterator[httpx.Client]:
    settings = serving_settings(
        "pytorch", models / "model.pt", model_name="tiny", flavor_options=SIGNATURE
    )
    server = start_server(settings)
    yield server.client
    server.stop()


def test_served_over_oip_v2(served: httpx.Client) -> None:
    data = inputs(2)
    body: dict[str, Any] = {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": list(a.shape), "data": a.ravel().tolist()}
            for n, a in data.items()
        ]
    }
    answer = served.post("/v2/models/tiny/infer", json=body)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["logits"]["shape"] == [2, 3]
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], (2, 3)),
        expected(2)["probabilities"],
        rtol=1e-5,
    )
    wrong = served.post(
        "/v2/models/tiny/infer",
        json={
            "inputs": [
                {**body["inputs"][0], "shape": [2, 64], "data": [0.0] * 128},
                body["inputs"][1],
            ]
        },
    )
    assert wrong.status_code == 400
    assert "'image'" in wrong.json()["error"] and "[-1, 1, 8, 8]" in wrong.json()["error"]


def test_served_over_vertex(served: httpx.Client) -> None:
    data = inputs(2)
    instances = [
        {"image": data["image"][i].tolist(), "scale": float(data["scale"][i])} for i in range(2)
    ]
    answer = served.post(routes.VERTEX_PREDICT, json={"instances": instances})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert set(predictions[0]) == {"logits", "probabilities"}
    np.testing.assert_allclose([p["logits"] for p in predictions], expected(2)["logits"], rtol=1e-5)


# --- the signature from deployer.yaml -----------------------------------------------------


def project_with(models: Path, folder: Path, signature: str) -> Path:
    (folder / "model.pt").write_bytes((models / "model.pt").read_bytes())
    (folder / "deployer.yaml").write_text(
        f"name: tiny\nmodel:\n  path: model.pt\n  signature:\n{signature}"
    )
    return folder / "deployer.yaml"


def test_torchscript_signature_from_an_example_batch(models: Path, tmp_path: Path) -> None:
    from deployer import Project

    image, scale = example.example_inputs(2)
    np.savez(tmp_path / "example.npz", scale=scale.numpy(), image=image.numpy())
    project = Project.load(project_with(models, tmp_path, "    example: example.npz\n"))
    assert project.flavor == "pytorch"
    report = project.validate()
    assert report.signature is not None
    assert report.signature["inputs"] == [
        {"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]},
        {"name": "scale", "datatype": "FP32", "shape": [-1]},
    ]
    assert "example" not in project.flavor_options  # the image gets the inputs, not the file


def test_a_bad_example_is_a_config_error_at_its_line(models: Path, tmp_path: Path) -> None:
    from deployer import Project
    from deployer.errors import ConfigError

    (tmp_path / "example.npz").write_bytes(b"not an npz")
    project = Project.load(project_with(models, tmp_path, "    example: example.npz\n"))
    with pytest.raises(ConfigError) as info:
        project.validate()
    assert "line 5: model.signature.example:" in str(info.value)
    assert "example.npz: not an example input" in str(info.value)


def test_torchscript_signature_declared_in_deployer_yaml(models: Path, tmp_path: Path) -> None:
    from deployer import Project

    inputs = (
        "    inputs:\n"
        "      - {name: image, datatype: FP32, shape: [-1, 1, 8, 8]}\n"
        "      - {name: scale, datatype: FP32, shape: [-1]}\n"
        "    outputs: [logits, probabilities]\n"
    )
    report = Project.load(project_with(models, tmp_path, inputs)).validate()
    assert report.signature is not None
    assert [o["name"] for o in report.signature["outputs"]] == ["logits", "probabilities"]


def test_a_bad_declared_shape_is_refused_at_its_line(models: Path, tmp_path: Path) -> None:
    from deployer import Project
    from deployer.errors import ConfigError

    inputs = "    inputs:\n      - {name: image, datatype: FP32, shape: [-1, 0]}\n"
    with pytest.raises(ConfigError) as info:
        Project.load(project_with(models, tmp_path, inputs))
    assert "shape" in str(info.value) and "[-1, 0]" in str(info.value)


def test_a_program_exported_with_a_fixed_batch_declares_it(tmp_path: Path) -> None:
    from deployer.serving.errors import BadRequest
    from deployer.serving.tensors import check_inputs

    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(example.build(), example.example_inputs(2)), str(path))
    model = load_model("pytorch", str(path))
    assert [s.shape for s in model.signature.inputs] == [(2, 1, 8, 8), (2,)]
    assert model.signature.outputs[0].shape == (-1, 3)
    assert model.batchable is False  # batching would change the batch size it takes
    with pytest.raises(
        BadRequest, match=r"'image' has shape \[3, 1, 8, 8\]; expected \[2, 1, 8, 8\]"
    ):
        check_inputs(inputs(3), model.signature)
    result = model.predict(check_inputs(inputs(2), model.signature), "logits", {})
    np.testing.assert_allclose(result["logits"], expected(2)["logits"], rtol=1e-5)
