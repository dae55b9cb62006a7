"""Transformers models served by a real ``python -m deployer.serving`` over OIP v2 and
Vertex: answers equal ``transformers.pipeline``'s, concurrent texts of different lengths
(micro-batched, padded) equal one at a time, and bad inputs or parameters are 400s naming
what was wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import ServerFactory, load_example, serving_settings

from deployer.serving import routes

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
transformers.utils.logging.disable_progress_bar()  # tqdm's monitor thread would outlive us
example = load_example("transformers/create.py")

TEXTS = ["the cat sat on the mat and the dog sat on it", "good movie", "i love paris", "bad"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf-served")
    return {kind: example.build(root / kind, kind) for kind in example.KINDS}


def pipeline(folder: Path, task: str) -> Any:
    return transformers.pipeline(task, model=str(folder), tokenizer=str(folder), device="cpu")


@pytest.fixture(scope="module")
def classifier(start_server: ServerFactory, folders: dict[str, Path]) -> Iterator[httpx.Client]:
    settings = serving_settings(
        "transformers", folders["classifier"], model_name="sentiment", max_batch_wait_ms=20.0
    )
    server = start_server(settings, OFFLINE)
    yield server.client
    server.stop()


@pytest.fixture(scope="module")
def generator(start_server: ServerFactory, folders: dict[str, Path]) -> Iterator[httpx.Client]:
    settings = serving_settings(
        "transformers",
        folders["generator"],
        model_name="writer",
        flavor_options={"max_new_tokens": 8},
    )
    server = start_server(settings, OFFLINE)
    yield server.client
    server.stop()


def oip_text(texts: list[Any], datatype: str = "BYTES") -> dict[str, Any]:
    return {
        "inputs": [{"name": "text", "datatype": datatype, "shape": [len(texts)], "data": texts}]
    }


def outputs_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in body["outputs"]}


def test_oip_metadata(classifier: httpx.Client) -> None:
    body = classifier.get("/v2/models/sentiment").json()
    assert body["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [(o["name"], o["datatype"]) for o in body["outputs"]] == [
        ("label", "BYTES"), ("score", "FP32"),
    ]  # fmt: skip


def test_oip_classification_equals_the_pipeline(
    classifier: httpx.Client, folders: dict[str, Path]
) -> None:
    expected = [pipeline(folders["classifier"], "text-classification")(t)[0] for t in TEXTS]
    answer = classifier.post("/v2/models/sentiment/infer", json=oip_text(TEXTS))
    assert answer.status_code == 200, answer.text
    outputs = outputs_by_name(answer.json())
    assert outputs["label"] == {
        "name": "label", "datatype": "BYTES", "shape": [4], "data": [e["label"] for e in expected],
    }  # fmt: skip
    assert outputs["score"]["datatype"] == "FP32" and outputs["score"]["shape"] == [4]
    np.testing.assert_allclose(outputs["score"]["data"], [e["score"] for e in expected], rtol=1e-5)


def test_oip_top_k_parameter(classifier: httpx.Client) -> None:
    body = {**oip_text(TEXTS[:2]), "parameters": {"top_k": 2}}
    answer = classifier.post("/v2/models/sentiment/infer", json=body)
    assert answer.status_code == 200, answer.text
    outputs = outputs_by_name(answer.json())
    assert outputs["label"]["shape"] == [2, 2]
    assert sorted(outputs["label"]["data"][:2]) == ["NEGATIVE", "POSITIVE"]
    bad = classifier.post(
        "/v2/models/sentiment/infer", json={**oip_text(TEXTS[:1]), "parameters": {"top_k": -1}}
    )
    assert bad.status_code == 400 and "parameter top_k" in bad.json()["error"], bad.text


def test_vertex_instances_as_strings_and_objects(
    classifier: httpx.Client, folders: dict[str, Path]
) -> None:
    expected = [pipeline(folders["classifier"], "text-classification")(t)[0] for t in TEXTS[:2]]
    for instances in (TEXTS[:2], [{"text": t} for t in TEXTS[:2]]):
        answer = classifier.post(routes.VERTEX_PREDICT, json={"instances": instances})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert [p["label"] for p in predictions] == [e["label"] for e in expected]
        np.testing.assert_allclose(
            [p["score"] for p in predictions], [e["score"] for e in expected], rtol=1e-5
        )


def test_concurrent_texts_of_different_lengths_equal_one_at_a_time(
    classifier: httpx.Client,
) -> None:
    def score(text: str) -> float:
        answer = classifier.post(routes.VERTEX_PREDICT, json={"instances": [text]})
        assert answer.status_code == 200, answer.text
        return float(answer.json()["predictions"][0]["score"])

    alone = [score(t) for t in TEXTS]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(score, TEXTS * 4))
    np.testing.assert_allclose(together, alone * 4, rtol=1e-5)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {"inputs": [{"name": "words", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]},
            ["'text'", "missing"],
        ),
        (oip_text([1.5, 2.5], datatype="FP32"), ["'text'", "BYTES"]),
    ],
    ids=["missing-text", "numbers"],
)
def test_oip_bad_inputs_are_400_naming_the_input(
    classifier: httpx.Client, body: dict[str, Any], named: list[str]
) -> None:
    answer = classifier.post("/v2/models/sentiment/infer", json=body)
    assert answer.status_code == 400, answer.text
    for part in named:
        assert part in answer.json()["error"], answer.json()["error"]


@pytest.mark.parametrize(
    ("instances", "named"),
    [([3, 4], ["'text'", "strings (BYTES)"]), ([{"words": "hi"}], ["missing 'text'"])],
    ids=["numbers", "missing-text"],
)
def test_vertex_bad_instances_are_400_naming_the_input(
    classifier: httpx.Client, instances: list[Any], named: list[str]
) -> None:
    answer = classifier.post(routes.VERTEX_PREDICT, json={"instances": instances})
    assert answer.status_code == 400, answer.text
    for part in named:
        assert part in answer.json()["error"], answer.json()["error"]


def test_generation_over_oip_and_vertex(generator: httpx.Client, folders: dict[str, Path]) -> None:
    pipe = pipeline(folders["generator"], "text-generation")
    expected = [pipe(t, max_new_tokens=3)[0]["generated_text"] for t in TEXTS[:2]]
    body = {**oip_text(TEXTS[:2]), "parameters": {"max_new_tokens": 3}}
    answer = generator.post("/v2/models/writer/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert outputs_by_name(answer.json())["generated_text"]["data"] == expected
    vertex = generator.post(
        routes.VERTEX_PREDICT,
        json={"instances": TEXTS[:2], "parameters": {"max_new_tokens": 3}},
    )
    assert vertex.status_code == 200, vertex.text
    assert vertex.json()["predictions"] == expected


def test_generation_beyond_the_bound_is_400(generator: httpx.Client) -> None:
    body = {**oip_text(["hello"]), "parameters": {"max_new_tokens": 9}}
    answer = generator.post("/v2/models/writer/infer", json=body)
    assert answer.status_code == 400, answer.text
    assert "max_new_tokens is 9; this model allows at most 8" in answer.json()["error"]
    assert generator.get("/v2/models/writer/ready").status_code == 200  # still serving


@pytest.fixture(scope="module")
def encoder_and_tagger(
    start_server: ServerFactory, folders: dict[str, Path]
) -> Iterator[dict[str, httpx.Client]]:
    servers = {
        kind: start_server(
            serving_settings("transformers", folders[kind], model_name=kind), OFFLINE
        )
        for kind in ("encoder", "tagger")
    }
    yield {kind: server.client for kind, server in servers.items()}
    for server in servers.values():
        server.stop()


def test_embeddings_over_oip_and_vertex(
    encoder_and_tagger: dict[str, httpx.Client], folders: dict[str, Path]
) -> None:
    features = pipeline(folders["encoder"], "feature-extraction")
    expected = np.array([np.mean(np.array(features(t))[0], axis=0) for t in TEXTS])
    client = encoder_and_tagger["encoder"]
    answer = client.post("/v2/models/encoder/infer", json=oip_text(TEXTS))
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["name"] == "embedding" and output["datatype"] == "FP32"
    assert output["shape"] == [4, 32]
    np.testing.assert_allclose(np.reshape(output["data"], (4, 32)), expected, rtol=1e-4, atol=1e-5)
    vertex = client.post(routes.VERTEX_PREDICT, json={"instances": TEXTS[:2]})
    assert vertex.status_code == 200, vertex.text
    np.testing.assert_allclose(vertex.json()["predictions"], expected[:2], rtol=1e-4, atol=1e-5)


def test_entities_over_oip_and_vertex(
    encoder_and_tagger: dict[str, httpx.Client], folders: dict[str, Path]
) -> None:
    tagger = pipeline(folders["tagger"], "token-classification")
    expected = [[e["word"] for e in tagger(t, aggregation_strategy="simple")] for t in TEXTS]
    client = encoder_and_tagger["tagger"]
    answer = client.post("/v2/models/tagger/infer", json=oip_text(TEXTS))
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["name"] == "entities" and output["datatype"] == "BYTES"
    assert [[e["word"] for e in json.loads(row)] for row in output["data"]] == expected
    vertex = client.post(routes.VERTEX_PREDICT, json={"instances": TEXTS[:1]})
    assert vertex.status_code == 200, vertex.text
    (row,) = vertex.json()["predictions"]
    assert [e["word"] for e in json.loads(row)] == expected[0]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (routes.SAGEMAKER_INVOCATIONS, {"instances": [{"text": t} for t in TEXTS[:2]]}),
        (routes.SAGEMAKER_INVOCATIONS, {"inputs": {"text": TEXTS[:2]}}),
        (routes.AZURE_SCORING, {"instances": [{"text": t} for t in TEXTS[:2]]}),
    ],
    ids=["sagemaker-instances", "sagemaker-columns", "azure"],
)
def test_sagemaker_and_azure_bodies(
    classifier: httpx.Client, folders: dict[str, Path], path: str, body: dict[str, Any]
) -> None:
    expected = [pipeline(folders["classifier"], "text-classification")(t)[0] for t in TEXTS[:2]]
    answer = classifier.post(path, json=body)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["label"] for p in predictions] == [e["label"] for e in expected]
