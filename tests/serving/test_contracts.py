"""Every cloud's serving contract, over HTTP against a real ``python -m deployer.serving``.

Expected predictions are computed in this process from the same model file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import (
    ROWS,
    VERTEX_HEALTH,
    VERTEX_PREDICT,
    ServerFactory,
    SklearnServer,
    free_port,
    load_example,
    npy_bytes,
    oip_request,
    scrape,
    serving_settings,
)

from deployer.serving import routes

ROWS_VIA_FP32 = ROWS.astype(np.float32).astype(np.float64)


def csv_bytes(array: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in array).encode() + b"\n"


def parse_csv(text: str) -> np.ndarray:
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


# --- SageMaker ------------------------------------------------------------------------


def test_sagemaker_ping(client: httpx.Client) -> None:
    answer = client.get("/ping")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready"}


@pytest.mark.parametrize(
    "body",
    [
        lambda rows: rows.tolist(),
        lambda rows: {"instances": rows.tolist()},
        lambda rows: {"inputs": rows.tolist()},
        lambda rows: {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": rows.tolist()}},
    ],
    ids=["rows", "instances", "inputs", "dataframe_split"],
)
def test_invocations_json(client: httpx.Client, sklearn_model: Any, body: Any) -> None:
    answer = client.post("/invocations", json=body(ROWS))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"predictions": sklearn_model.predict(ROWS).tolist()}


def test_invocations_single_row(client: httpx.Client, sklearn_model: Any) -> None:
    answer = client.post("/invocations", json=ROWS[2].tolist())
    assert answer.json() == {"predictions": sklearn_model.predict(ROWS[2:3]).tolist()}


def test_invocations_csv_in_and_out(client: httpx.Client, sklearn_model: Any) -> None:
    answer = client.post(
        "/invocations",
        content=csv_bytes(ROWS),
        headers={"content-type": "text/csv", "accept": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv"
    assert parse_csv(answer.text).ravel().tolist() == sklearn_model.predict(ROWS).tolist()


def test_invocations_csv_answers_in_its_own_type_without_accept(
    client: httpx.Client, sklearn_model: Any
) -> None:
    answer = client.post(
        "/invocations", content=csv_bytes(ROWS), headers={"content-type": "text/csv; charset=utf-8"}
    )
    assert answer.headers["content-type"] == "text/csv"
    assert parse_csv(answer.text).ravel().tolist() == sklearn_model.predict(ROWS).tolist()


def test_invocations_npy_in_and_out(client: httpx.Client, sklearn_model: Any) -> None:
    answer = client.post(
        "/invocations",
        content=npy_bytes(ROWS),
        headers={"content-type": "application/x-npy", "accept": "application/x-npy"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-npy"
    result = np.load(io.BytesIO(answer.content), allow_pickle=False)
    np.testing.assert_array_equal(result, sklearn_model.predict(ROWS))


@pytest.mark.parametrize(
    ("accept", "expected_type"),
    [
        ("application/json", "application/json"),
        ("text/csv", "text/csv"),
        ("application/x-npy", "application/x-npy"),
        ("application/xml, text/csv;q=0.9", "text/csv"),
        ("*/*", "application/x-npy"),
    ],
)
def test_invocations_accept_decides_the_answer_type(
    client: httpx.Client, sklearn_model: Any, accept: str, expected_type: str
) -> None:
    answer = client.post(
        "/invocations",
        content=npy_bytes(ROWS),
        headers={"content-type": "application/x-npy", "accept": accept},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == expected_type
    expected = sklearn_model.predict(ROWS).tolist()
    if expected_type == "application/json":
        assert answer.json()["predictions"] == expected
    elif expected_type == "text/csv":
        assert parse_csv(answer.text).ravel().tolist() == expected
    else:
        assert np.load(io.BytesIO(answer.content)).tolist() == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amzn-sagemaker-custom-attributes": "trace=1,method=predict_proba"},
        {"x-deployer-method": "predict_proba"},
    ],
    ids=["sagemaker-custom-attributes", "x-deployer-method"],
)
def test_invocations_method_from_headers(
    client: httpx.Client, sklearn_model: Any, headers: dict[str, str]
) -> None:
    answer = client.post("/invocations", json=ROWS.tolist(), headers=headers)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], sklearn_model.predict_proba(ROWS))


def test_invocations_proba_as_csv(client: httpx.Client, sklearn_model: Any) -> None:
    answer = client.post(
        "/invocations",
        json={"instances": ROWS.tolist(), "parameters": {"method": "predict_proba"}},
        headers={"accept": "text/csv"},
    )
    np.testing.assert_allclose(parse_csv(answer.text), sklearn_model.predict_proba(ROWS))


def test_sagemaker_bind_to_port(
    start_server: ServerFactory,
    custom_example_dir: Path,
    custom_predictor_options: dict[str, Any],
) -> None:
    """The custom example predictor, end to end, on the port SageMaker dictates."""
    settings = serving_settings(
        "python", custom_example_dir / "weights.json", flavor_options=custom_predictor_options
    )
    bind_port = free_port()
    server = start_server(settings, {"SAGEMAKER_BIND_TO_PORT": str(bind_port)})
    assert server.port == bind_port != settings["port"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{settings['port']}/ping", timeout=30)  # refused at once

    local = load_example("custom/predictor.py").Predictor()
    local.load(str(custom_example_dir))
    answer = server.client.post("/invocations", json=ROWS.tolist())
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == local.predict(ROWS, {}).tolist()
    answer = server.client.post(
        "/invocations",
        json={"instances": ROWS.tolist(), "parameters": {"method": "predict_proba"}},
    )
    np.testing.assert_allclose(answer.json()["predictions"], local.predict_proba(ROWS))
    # A parameter the predictor understands reaches it (and bypasses micro-batching).
    answer = server.client.post(
        routes.VERTEX_PREDICT, json={"instances": ROWS.tolist(), "parameters": {"threshold": 0.0}}
    )
    assert answer.json() == {"predictions": [1.0] * len(ROWS)}
    assert server.stop() == 0


# --- Vertex AI ------------------------------------------------------------------------


def test_vertex_port_and_routes_from_aip_variables(sklearn_server: SklearnServer) -> None:
    server = sklearn_server.server
    assert server.port == int(sklearn_server.env["AIP_HTTP_PORT"])
    assert server.port != sklearn_server.settings["port"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{sklearn_server.settings['port']}/ping", timeout=30)
    assert server.client.get(VERTEX_HEALTH).status_code == 200
    # The default routes give way to the ones AIP_* name.
    assert server.client.get(routes.VERTEX_HEALTH).status_code == 404


def test_vertex_predict(client: httpx.Client, sklearn_model: Any) -> None:
    answer = client.post(VERTEX_PREDICT, json={"instances": ROWS.tolist()})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": sklearn_model.predict(ROWS).tolist()}


def test_vertex_predict_with_parameters(client: httpx.Client, sklearn_model: Any) -> None:
    payload = {"instances": ROWS.tolist(), "parameters": {"method": "predict_proba"}}
    answer = client.post(VERTEX_PREDICT, json=payload)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], sklearn_model.predict_proba(ROWS))


def test_vertex_predict_takes_every_body_rawpredict_passes_through(
    client: httpx.Client, sklearn_model: Any
) -> None:
    """rawPredict forwards the client's body unchanged, so the route takes what
    /invocations takes: a bare JSON array, CSV, and an unsupported type is 415."""
    expected = sklearn_model.predict(ROWS).tolist()
    answer = client.post(VERTEX_PREDICT, json=ROWS.tolist())
    assert answer.json() == {"predictions": expected}
    csv = "\n".join(",".join(str(v) for v in row) for row in ROWS.tolist())
    answer = client.post(VERTEX_PREDICT, content=csv, headers={"content-type": "text/csv"})
    assert answer.status_code == 200
    assert [int(float(v)) for v in answer.text.split()] == expected
    answer = client.post(VERTEX_PREDICT, content=b"[[1]]", headers={"content-type": "text/plain"})
    assert answer.status_code == 415


# --- Azure ML -------------------------------------------------------------------------


def test_azure_routes(client: httpx.Client, sklearn_model: Any) -> None:
    assert client.get(routes.AZURE_LIVENESS).status_code == 200
    assert client.get(routes.AZURE_READINESS).status_code == 200
    answer = client.post(routes.AZURE_SCORING, json={"instances": ROWS.tolist()})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": sklearn_model.predict(ROWS).tolist()}
    answer = client.post(
        routes.AZURE_SCORING,
        content=csv_bytes(ROWS),
        headers={"content-type": "text/csv", "accept": "application/json"},
    )
    assert answer.json() == {"predictions": sklearn_model.predict(ROWS).tolist()}


# --- Open Inference Protocol v2 -------------------------------------------------------


def test_oip_health_and_server_metadata(client: httpx.Client) -> None:
    assert client.get(routes.OIP_LIVE).status_code == 200
    assert client.get(routes.OIP_READY).status_code == 200
    assert client.get("/v2/models/iris/ready").status_code == 200
    assert client.get("/v2/models/iris/versions/1/ready").status_code == 200
    server = client.get(routes.OIP_SERVER).json()
    assert server["name"] == "deployer"
    assert "version" in server


def test_oip_model_metadata(client: httpx.Client) -> None:
    for path in ("/v2/models/iris", "/v2/models/iris/versions/1"):
        meta = client.get(path).json()
        assert meta["name"] == "iris"
        assert meta["versions"] == ["1"]
        assert meta["platform"] == "sklearn"
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        assert meta["outputs"] == [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ]


@pytest.mark.parametrize("path", ["/v2/models/iris/infer", "/v2/models/iris/versions/1/infer"])
def test_oip_infer_default_output(client: httpx.Client, sklearn_model: Any, path: str) -> None:
    answer = client.post(path, json=oip_request(ROWS, id="req-7"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1"
    assert body["id"] == "req-7"
    labels, proba = body["outputs"]  # no 'outputs' in the request: every output (the spec)
    assert labels == {
        "name": "predict",
        "shape": [len(ROWS)],
        "datatype": "INT64",
        "data": sklearn_model.predict(ROWS_VIA_FP32).tolist(),
    }
    assert proba["name"] == "predict_proba"
    assert proba["shape"] == [len(ROWS), 3]
    expected = sklearn_model.predict_proba(ROWS_VIA_FP32)
    np.testing.assert_allclose(np.reshape(proba["data"], proba["shape"]), expected)


def test_oip_infer_requested_outputs(client: httpx.Client, sklearn_model: Any) -> None:
    payload = oip_request(ROWS, outputs=[{"name": "predict_proba"}, {"name": "predict"}])
    answer = client.post("/v2/models/iris/infer", json=payload)
    assert answer.status_code == 200, answer.text
    proba, labels = answer.json()["outputs"]
    assert proba["name"] == "predict_proba"
    assert proba["datatype"] == "FP64"
    assert proba["shape"] == [len(ROWS), 3]
    expected = sklearn_model.predict_proba(ROWS_VIA_FP32)
    np.testing.assert_allclose(np.reshape(proba["data"], proba["shape"]), expected)
    assert labels["datatype"] == "INT64"
    assert labels["data"] == sklearn_model.predict(ROWS_VIA_FP32).tolist()


def test_oip_infer_fp64_input(client: httpx.Client, sklearn_model: Any) -> None:
    answer = client.post("/v2/models/iris/infer", json=oip_request(ROWS, "FP64"))
    assert answer.json()["outputs"][0]["data"] == sklearn_model.predict(ROWS).tolist()


# --- metrics --------------------------------------------------------------------------


def request_count(samples: dict[Any, float], route: str, status: str) -> float:
    key = ("deployer_request_duration_seconds_count", (("route", route), ("status", status)))
    return samples.get(key, 0.0)


def test_metrics(client: httpx.Client) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.post("/invocations", json=ROWS.tolist()).status_code == 200
    assert client.get("/no/such/route").status_code == 404
    assert client.post("/invocations", json=[[1, 2]]).status_code == 400
    after = scrape(client)

    assert request_count(after, "sagemaker_invocations", "200") == (
        request_count(before, "sagemaker_invocations", "200") + 3
    )
    assert request_count(after, "sagemaker_invocations", "400") == (
        request_count(before, "sagemaker_invocations", "400") + 1
    )
    assert request_count(after, "unmatched", "404") == request_count(before, "unmatched", "404") + 1
    bucket = (
        "deployer_request_duration_seconds_bucket",
        (("le", "+Inf"), ("route", "sagemaker_invocations"), ("status", "200")),
    )
    assert after[bucket] >= 3
    labels = (("route", "sagemaker_invocations"), ("status", "200"))
    assert after[("deployer_request_duration_seconds_sum", labels)] > 0

    assert after[("deployer_model_load_seconds", ())] > 0
    assert after[("deployer_model_ready", ())] == 1
    batches = ("deployer_batch_requests_count", ())
    assert after[batches] >= before.get(batches, 0) + 3
    assert after[("deployer_batch_requests_bucket", (("le", "+Inf"),))] == after[batches]


# --- the other flavours, end to end ---------------------------------------------------


@pytest.fixture(scope="module")
def onnx_server(start_server: ServerFactory, onnx_model_path: Path) -> Any:
    server = start_server(serving_settings("onnx", onnx_model_path))
    yield server
    server.stop()


def test_onnx_served(onnx_server: Any, onnx_model_path: Path) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_model_path), providers=["CPUExecutionProvider"])
    labels, proba = session.run(["label", "probabilities"], {"input": ROWS.astype(np.float32)})
    meta = onnx_server.client.get("/v2/models/iris").json()
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]

    answer = onnx_server.client.post(
        "/v2/models/iris/infer",
        json=oip_request(ROWS, outputs=[{"name": "label"}, {"name": "probabilities"}]),
    )
    assert answer.status_code == 200, answer.text
    out_labels, out_proba = answer.json()["outputs"]
    assert out_labels == {
        "name": "label",
        "shape": [len(ROWS)],
        "datatype": "INT64",
        "data": labels.tolist(),
    }
    assert out_proba["datatype"] == "FP32"
    assert out_proba["shape"] == [len(ROWS), 3]
    np.testing.assert_allclose(out_proba["data"], proba.ravel(), rtol=1e-6)

    answer = onnx_server.client.post(
        "/invocations", json=ROWS.tolist(), headers={"x-deployer-method": "probabilities"}
    )
    np.testing.assert_allclose(answer.json()["predictions"], proba, rtol=1e-6)


@pytest.fixture(scope="module")
def xgboost_server(start_server: ServerFactory, xgboost_model_path: Path) -> Any:
    server = start_server(serving_settings("xgboost", xgboost_model_path))
    yield server
    server.stop()


def test_xgboost_served(xgboost_server: Any, xgboost_model_path: Path) -> None:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(xgboost_model_path))
    expected = booster.predict(xgb.DMatrix(ROWS.astype(np.float32)))
    answer = xgboost_server.client.post(
        "/invocations",
        content=npy_bytes(ROWS),
        headers={"content-type": "application/x-npy", "accept": "application/x-npy"},
    )
    assert answer.status_code == 200, answer.text
    result = np.load(io.BytesIO(answer.content))
    assert result.shape == (len(ROWS), 3)
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    answer = xgboost_server.client.post("/v2/models/iris/infer", json=oip_request(ROWS))
    tensor = answer.json()["outputs"][0]
    assert (tensor["datatype"], tensor["shape"]) == ("FP32", [len(ROWS), 3])
    np.testing.assert_allclose(tensor["data"], expected.ravel(), rtol=1e-6)


def test_invocations_and_score_accept_an_oip_tensor_body(
    client: httpx.Client, sklearn_model: Any
) -> None:
    """The router forwards OIP bodies to managed endpoints' single invoke path."""
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    body = {
        "inputs": [
            {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [v for r in rows for v in r]}
        ],
        "parameters": {"method": "predict_proba"},
    }
    expected = sklearn_model.predict_proba(np.asarray(rows, dtype=np.float32)).tolist()
    for path in (routes.SAGEMAKER_INVOCATIONS, routes.AZURE_SCORING):
        answer = client.post(path, json=body)
        assert answer.status_code == 200, answer.text
        assert np.allclose(answer.json()["predictions"], expected)
