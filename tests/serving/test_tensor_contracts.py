"""Named tensor inputs (two numeric, one BYTES) and named outputs on every contract,
over HTTP against a real ``python -m deployer.serving`` with tests/fixtures/tensor_predictors.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import FIXTURES, ServerFactory, npy_bytes, serving_settings

from deployer.serving import oip_binary, routes

IMAGES = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
SCALES = [1.0, 0.5]
TEXTS = ["héllo", "ab"]
TOTALS = [15.0, 25.5]  # sum(0..5) * 1, sum(6..11) * 0.5
LABELS = ["HÉLLO", "AB"]
LENGTHS = [5, 2]
INSTANCES = [{"image": IMAGES[i].tolist(), "scale": SCALES[i], "text": TEXTS[i]} for i in range(2)]
PREDICTIONS = [{"total": TOTALS[i], "label": LABELS[i], "length": LENGTHS[i]} for i in range(2)]
INFER = "/v2/models/tensors/infer"


def oip_inputs(**overrides: dict[str, Any]) -> list[dict[str, Any]]:
    tensors = {
        "image": {
            "name": "image",
            "datatype": "FP32",
            "shape": [2, 2, 3],
            "data": IMAGES.ravel().tolist(),
        },
        "scale": {"name": "scale", "datatype": "FP64", "shape": [2], "data": SCALES},
        "text": {"name": "text", "datatype": "BYTES", "shape": [2], "data": TEXTS},
    }
    for name, change in overrides.items():
        tensors[name] = {**tensors[name], **change}
    return list(tensors.values())


@pytest.fixture(scope="module")
def tensors(start_server: ServerFactory) -> Iterator[httpx.Client]:
    options = {"predictor": "tensor_predictors:TensorPredictor", "code_paths": [str(FIXTURES)]}
    settings = serving_settings("python", None, model_name="tensors", flavor_options=options)
    server = start_server(settings)
    yield server.client
    server.stop()


@pytest.fixture(scope="module")
def sequence(start_server: ServerFactory) -> Iterator[httpx.Client]:
    options = {"predictor": "tensor_predictors:SequencePredictor", "code_paths": [str(FIXTURES)]}
    settings = serving_settings("python", None, model_name="seq", flavor_options=options)
    server = start_server(settings)
    yield server.client
    server.stop()


def outputs_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in body["outputs"]}


# --- OIP v2 -------------------------------------------------------------------------------


def test_oip_metadata_lists_every_named_input(tensors: httpx.Client) -> None:
    body = tensors.get("/v2/models/tensors").json()
    assert body["inputs"] == [
        {"name": "image", "datatype": "FP32", "shape": [-1, 2, 3]},
        {"name": "scale", "datatype": "FP64", "shape": [-1]},
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [o["name"] for o in body["outputs"]] == ["total", "label", "length"]


def test_oip_infer_takes_several_named_inputs_with_bytes(tensors: httpx.Client) -> None:
    answer = tensors.post(INFER, json={"id": "r1", "inputs": oip_inputs()[::-1]})
    assert answer.status_code == 200, answer.text
    outputs = outputs_by_name(answer.json())
    assert outputs["total"] == {"name": "total", "datatype": "FP64", "shape": [2], "data": TOTALS}
    assert outputs["label"] == {"name": "label", "datatype": "BYTES", "shape": [2], "data": LABELS}
    assert outputs["length"]["data"] == LENGTHS and outputs["length"]["datatype"] == "INT64"


def test_oip_requested_outputs_only(tensors: httpx.Client) -> None:
    answer = tensors.post(INFER, json={"inputs": oip_inputs(), "outputs": [{"name": "label"}]})
    assert answer.status_code == 200, answer.text
    assert [o["name"] for o in answer.json()["outputs"]] == ["label"]
    unknown = tensors.post(INFER, json={"inputs": oip_inputs(), "outputs": [{"name": "nope"}]})
    assert unknown.status_code == 400 and "nope" in unknown.json()["error"]


def test_oip_binary_bytes_input(tensors: httpx.Client) -> None:
    inputs = oip_inputs()
    text = inputs[2]
    raw = oip_binary.to_bytes(np.array([t.encode() for t in TEXTS], dtype=object), "BYTES")
    del text["data"]
    text["parameters"] = {"binary_data_size": len(raw)}
    head = httpx.Request("POST", "/", json={"inputs": inputs}).content
    answer = tensors.post(
        INFER,
        content=head + raw,
        headers={oip_binary.HEADER: str(len(head)), "content-type": "application/octet-stream"},
    )
    assert answer.status_code == 200, answer.text
    assert outputs_by_name(answer.json())["label"]["data"] == LABELS


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        (oip_inputs()[:2], ["'text'", "missing", "text (BYTES, shape [-1])"]),
        (
            [*oip_inputs(), {"name": "extra", "datatype": "FP32", "shape": [2], "data": [1, 2]}],
            ["'extra'", "unknown"],
        ),
        (oip_inputs(image={"datatype": "FP64"}), ["'image'", "FP64", "FP32"]),
        (oip_inputs(image={"shape": [2, 3, 2]}), ["'image'", "[2, 3, 2]", "[-1, 2, 3]"]),
        (oip_inputs(scale={"shape": [1], "data": [1.0]}), ["batch sizes", "scale: 1"]),
        (oip_inputs(text={"datatype": "FP32", "data": [1.0, 2.0]}), ["'text'", "BYTES"]),
        (oip_inputs(scale={"data": ["a", "b"]}), ["FP64", "strings"]),
    ],
    ids=["missing", "unknown", "dtype", "shape", "batch", "text-as-number", "string-as-number"],
)
def test_oip_bad_inputs_are_400_naming_the_input(
    tensors: httpx.Client, inputs: list[dict[str, Any]], named: list[str]
) -> None:
    answer = tensors.post(INFER, json={"inputs": inputs})
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    for part in named:
        assert part in message, message


# --- Vertex -------------------------------------------------------------------------------


def test_vertex_instances_as_objects(tensors: httpx.Client) -> None:
    answer = tensors.post(routes.VERTEX_PREDICT, json={"instances": INSTANCES})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": PREDICTIONS}


def test_vertex_b64_bytes_value(tensors: httpx.Client) -> None:
    instances = [{**INSTANCES[0], "text": {"b64": "aMOpbGxv"}}]  # "héllo" in UTF-8
    answer = tensors.post(routes.VERTEX_PREDICT, json={"instances": instances})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == PREDICTIONS[:1]


def test_vertex_one_output_by_method(tensors: httpx.Client) -> None:
    body = {"instances": INSTANCES, "parameters": {"method": "label"}}
    answer = tensors.post(routes.VERTEX_PREDICT, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": LABELS}


def test_vertex_bare_values_for_a_one_input_model(sequence: httpx.Client) -> None:
    answer = sequence.post(routes.VERTEX_PREDICT, json={"instances": [[1, 2, 3], [4, 5, 6]]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [6.0, 15.0]}


@pytest.mark.parametrize(
    ("instances", "named"),
    [
        ([{"image": IMAGES[0].tolist(), "text": "x"}], ["instance 0", "missing 'scale'"]),
        ([{**INSTANCES[0], "text": 3}], ["'text'", "strings (BYTES)"]),
        ([{**INSTANCES[0], "image": [[1, 2], [3, 4]]}], ["'image'", "[1, 2, 2]", "[-1, 2, 3]"]),
        ([1.0, 2.0], ["'image'", "'scale'", "'text'"]),
    ],
    ids=["missing", "number-as-text", "shape", "bare-values-for-three-inputs"],
)
def test_vertex_bad_instances_are_400_naming_the_input(
    tensors: httpx.Client, instances: list[Any], named: list[str]
) -> None:
    answer = tensors.post(routes.VERTEX_PREDICT, json={"instances": instances})
    assert answer.status_code == 400, answer.text
    for part in named:
        assert part in answer.json()["error"], answer.json()["error"]


def test_vertex_ragged_rows_are_400(sequence: httpx.Client) -> None:
    answer = sequence.post(routes.VERTEX_PREDICT, json={"instances": [[1, 2], [1, 2, 3]]})
    assert answer.status_code == 400
    assert "'tokens'" in answer.json()["error"]


# --- SageMaker ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        INSTANCES,
        {"instances": INSTANCES},
        {"inputs": {"image": IMAGES.tolist(), "scale": SCALES, "text": TEXTS}},
        {"inputs": oip_inputs()},
    ],
    ids=["list", "instances", "columns", "oip-tensors"],
)
def test_sagemaker_json_bodies(tensors: httpx.Client, body: Any) -> None:
    answer = tensors.post(routes.SAGEMAKER_INVOCATIONS, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": PREDICTIONS}


def test_sagemaker_jsonlines(tensors: httpx.Client) -> None:
    import json

    body = "".join(json.dumps(i) + "\n" for i in INSTANCES).encode()
    headers = {"content-type": "application/jsonlines", "accept": "application/jsonlines"}
    answer = tensors.post(routes.SAGEMAKER_INVOCATIONS, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert [json.loads(line) for line in answer.text.splitlines()] == PREDICTIONS


def test_sagemaker_npy_for_a_one_input_model(sequence: httpx.Client) -> None:
    rows = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    headers = {"content-type": "application/x-npy", "accept": "application/x-npy"}
    answer = sequence.post(routes.SAGEMAKER_INVOCATIONS, content=npy_bytes(rows), headers=headers)
    assert answer.status_code == 200, answer.text
    assert np.load(__import__("io").BytesIO(answer.content)).tolist() == [6.0, 15.0]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "named"),
    [
        ("text/csv", b"1,2,3\n", 415, ["tabular rows only", "image, scale, text"]),
        ("application/x-npy", npy_bytes(np.zeros((1, 2, 3))), 415, ["one tensor"]),
    ],
    ids=["csv", "npy-several-inputs"],
)
def test_sagemaker_tabular_only_types_say_so(
    tensors: httpx.Client, content_type: str, body: bytes, status: int, named: list[str]
) -> None:
    answer = tensors.post(
        routes.SAGEMAKER_INVOCATIONS, content=body, headers={"content-type": content_type}
    )
    assert answer.status_code == status, answer.text
    for part in named:
        assert part in answer.json()["error"]


def test_sagemaker_npy_answer_of_several_outputs_is_406(tensors: httpx.Client) -> None:
    headers = {"accept": "application/x-npy"}
    answer = tensors.post(routes.SAGEMAKER_INVOCATIONS, json=INSTANCES, headers=headers)
    assert answer.status_code == 406
    assert "total, label, length" in answer.json()["error"]
    one = tensors.post(
        routes.SAGEMAKER_INVOCATIONS,
        json=INSTANCES,
        headers={**headers, "x-deployer-method": "total"},
    )
    assert one.status_code == 200
    assert np.load(__import__("io").BytesIO(one.content)).tolist() == TOTALS


# --- Azure ML -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"instances": INSTANCES},
        {"inputs": {"image": IMAGES.tolist(), "scale": SCALES, "text": TEXTS}},
    ],
    ids=["instances", "columns"],
)
def test_azure_score(tensors: httpx.Client, body: Any) -> None:
    answer = tensors.post(routes.AZURE_SCORING, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": PREDICTIONS}


# --- deployer check's probes ---------------------------------------------------------------


def test_check_probes_pass_a_named_tensor_model(tensors: httpx.Client) -> None:
    from deployer.image.conformance import check_azure, check_oip, check_sagemaker, discover_sample

    url = str(tensors.base_url).rstrip("/")
    sample = discover_sample(tensors, url, "tensors")
    assert [t["name"] for t in sample.tensors] == ["image", "scale", "text"]
    assert sample.rows[0] == {"image": [[0, 0, 0], [0, 0, 0]], "scale": 0, "text": "0"}
    assert "csv: 415" in check_sagemaker(tensors, url, sample)
    check_azure(tensors, url, sample)
    check_oip(tensors, url, sample)


def test_model_method_picks_the_default_output(start_server: ServerFactory) -> None:
    options = {"predictor": "tensor_predictors:TensorPredictor", "code_paths": [str(FIXTURES)]}
    settings = serving_settings(
        "python", None, model_name="tensors", flavor_options=options, default_method="length"
    )
    server = start_server(settings)
    try:
        answer = server.client.post(routes.VERTEX_PREDICT, json={"instances": INSTANCES})
        assert answer.json() == {"predictions": LENGTHS}
        body = {"instances": INSTANCES, "parameters": {"method": "total"}}
        assert server.client.post(routes.VERTEX_PREDICT, json=body).json() == {
            "predictions": TOTALS
        }
    finally:
        server.stop()


@pytest.fixture(scope="module")
def text_model(start_server: ServerFactory) -> Iterator[httpx.Client]:
    options = {"predictor": "tensor_predictors:TextPredictor", "code_paths": [str(FIXTURES)]}
    server = start_server(
        serving_settings("python", None, model_name="text", flavor_options=options)
    )
    yield server.client
    server.stop()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (routes.VERTEX_PREDICT, {"instances": ["héllo", "ab"]}),
        (routes.SAGEMAKER_INVOCATIONS, ["héllo", "ab"]),
        (routes.SAGEMAKER_INVOCATIONS, {"inputs": ["héllo", "ab"]}),
        (routes.AZURE_SCORING, {"instances": ["héllo", "ab"]}),
    ],
    ids=["vertex", "sagemaker-list", "sagemaker-inputs", "azure"],
)
def test_bare_strings_for_a_one_text_input_model(
    text_model: httpx.Client, path: str, body: Any
) -> None:
    answer = text_model.post(path, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [5, 2]}


def test_vertex_b64_instances_for_a_one_text_input_model(text_model: httpx.Client) -> None:
    body = {"instances": [{"b64": "aMOpbGxv"}, {"b64": "YWI="}]}  # "héllo", "ab"
    answer = text_model.post(routes.VERTEX_PREDICT, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [5, 2]}
