"""The Keras example (examples/keras, a tiny two-input model built from code) through
``deployer build`` and ``push --to local``, then predictions over OIP v2 and Vertex."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from docker_support import local_url, pushed_example

from deployer import Project

pytestmark = pytest.mark.docker
pytest.importorskip("keras")
pytest.importorskip("tensorflow")
NAME = "tiny-keras-test"


@pytest.fixture(scope="module")
def deployed(docker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    folder = tmp_path_factory.mktemp("keras-project")
    with pushed_example(docker, folder, "keras", NAME) as project:
        yield project


def expected(data: dict[str, np.ndarray], project: Project) -> dict[str, np.ndarray]:
    result = project.load_model().predict(data, "logits", {})
    return {k: np.asarray(v) for k, v in result.items()}


def test_image_size_is_reported(deployed: Project, docker: Any) -> None:
    image = docker.images.get(deployed.image_ref())
    size_mb = image.attrs["Size"] / 1e6
    print(f"\nkeras image {deployed.image_ref()}: {size_mb:.0f} MB")
    assert image.labels["dev.deployer.model.flavor"] == "keras"
    assert size_mb < 3000  # tensorflow-cpu, no CUDA libraries


def test_oip_v2_infer_with_two_named_inputs(deployed: Project) -> None:
    data = {
        "features": np.linspace(0, 1, 8, dtype=np.float32).reshape(2, 4),
        "scale": np.array([[1.0], [2.0]], dtype=np.float32),
    }
    body = {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": list(a.shape), "data": a.ravel().tolist()}
            for n, a in data.items()
        ]
    }
    answer = httpx.post(f"{local_url(deployed)}/v2/models/{NAME}/infer", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    want = expected(data, deployed)
    for name in ("logits", "probabilities"):
        assert outputs[name]["shape"] == [2, 3]
        np.testing.assert_allclose(
            np.reshape(outputs[name]["data"], (2, 3)), want[name], rtol=1e-5, atol=1e-6
        )


def test_vertex_instances_as_objects(deployed: Project) -> None:
    instances = [{"features": [0.25] * 4, "scale": [1.5]}]
    answer = httpx.post(
        f"{local_url(deployed)}/vertex/predict", json={"instances": instances}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    data = {
        "features": np.full((1, 4), 0.25, dtype=np.float32),
        "scale": np.array([[1.5]], dtype=np.float32),
    }
    want = expected(data, deployed)
    np.testing.assert_allclose(
        prediction["probabilities"], want["probabilities"][0], rtol=1e-5, atol=1e-6
    )
    bad = httpx.post(
        f"{local_url(deployed)}/vertex/predict",
        json={"instances": [{"features": [1.0]}]},
        timeout=60,
    )
    assert bad.status_code == 400 and "'" in bad.json()["error"]


def test_check_passes_every_contract_with_named_tensors(deployed: Project) -> None:
    report = deployed.check(deployed.image_ref())
    failures = [r for r in report.results if not r.passed]
    assert failures == []
    assert {r.contract for r in report.results} >= {"SageMaker", "Vertex AI", "Azure ML", "OIP v2"}
