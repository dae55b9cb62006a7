"""The Hugging Face example (examples/transformers, a tiny text classifier built from a
config) through ``deployer build`` and ``push --to local``, then predictions over OIP v2
and Vertex equal to the model loaded on the host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from docker_support import local_url, pushed_example

from deployer import Project

pytestmark = pytest.mark.docker
pytest.importorskip("torch")
pytest.importorskip("transformers")
NAME = "tiny-sentiment-test"
TEXTS = ["good movie", "the cat sat on the mat and i love it"]


@pytest.fixture(scope="module")
def deployed(docker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    folder = tmp_path_factory.mktemp("transformers-project")
    with pushed_example(docker, folder, "transformers", NAME, "model") as project:
        yield project


def expected(project: Project) -> dict[str, np.ndarray]:
    texts = np.array(TEXTS, dtype=object)
    return dict(project.load_model().predict({"text": texts}, "label", {}))


def test_image_size_is_reported(deployed: Project, docker: Any) -> None:
    image = docker.images.get(deployed.image_ref())
    size_mb = image.attrs["Size"] / 1e6
    print(f"\ntransformers image {deployed.image_ref()}: {size_mb:.0f} MB")
    assert image.labels["dev.deployer.model.flavor"] == "transformers"
    assert size_mb < 2500  # the CPU torch wheel: a CUDA build alone is several GB


def test_oip_v2_infer_with_text(deployed: Project) -> None:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": TEXTS}]}
    answer = httpx.post(f"{local_url(deployed)}/v2/models/{NAME}/infer", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    want = expected(deployed)
    assert outputs["label"]["data"] == want["label"].tolist()
    np.testing.assert_allclose(outputs["score"]["data"], want["score"], rtol=1e-5)


def test_vertex_strings_top_k_and_a_bad_instance(deployed: Project) -> None:
    body = {"instances": TEXTS[:1], "parameters": {"top_k": 2}}
    answer = httpx.post(f"{local_url(deployed)}/vertex/predict", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    assert sorted(prediction["label"]) == ["NEGATIVE", "POSITIVE"]
    bad = httpx.post(f"{local_url(deployed)}/vertex/predict", json={"instances": [3]}, timeout=60)
    assert bad.status_code == 400 and "'text'" in bad.json()["error"]
