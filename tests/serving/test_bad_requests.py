"""Bad requests get a clear 4xx ``{"error": ...}`` and the server keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import SMALL_BODY_LIMIT, VERTEX_PREDICT, ServerFactory, serving_settings

from deployer.serving import routes

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def tensor(data: Any, shape: list[int], datatype: str = "FP32") -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": data}]}


def assert_error(answer: httpx.Response, status: int, *fragments: str) -> None:
    """``status`` with a JSON ``{"error": message}`` naming every fragment."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert list(body) == ["error"], body
    message = body["error"]
    assert isinstance(message, str) and message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.fixture
def client(sklearn_server: Any, sklearn_model: Any) -> Iterator[httpx.Client]:
    """The shared server's client; after each test a good request must still work."""
    client = sklearn_server.server.client
    yield client
    sklearn_server.server.assert_alive()
    answer = client.post(routes.SAGEMAKER_INVOCATIONS, json=ROWS)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": sklearn_model.predict(np.array(ROWS)).tolist()}


@pytest.mark.parametrize(
    "path",
    [routes.SAGEMAKER_INVOCATIONS, VERTEX_PREDICT, routes.AZURE_SCORING, "/v2/models/iris/infer"],
)
@pytest.mark.parametrize("body", [b"{not json", b"[[1, 2, 3, 4]", b"", b"\xff\xfe"])
def test_malformed_json(client: httpx.Client, path: str, body: bytes) -> None:
    answer = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_error(answer, 400, "malformed JSON")


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "image/png"])
def test_unsupported_content_type(client: httpx.Client, content_type: str) -> None:
    answer = client.post(
        routes.SAGEMAKER_INVOCATIONS, content=b"<rows/>", headers={"content-type": content_type}
    )
    assert_error(answer, 415, content_type, "application/json", "text/csv", "application/x-npy")


@pytest.mark.parametrize("accept", ["application/xml", "image/png, text/html"])
def test_unacceptable_accept(client: httpx.Client, accept: str) -> None:
    answer = client.post(routes.SAGEMAKER_INVOCATIONS, json=ROWS, headers={"accept": accept})
    assert_error(answer, 406, accept)


@pytest.mark.parametrize("path", [routes.SAGEMAKER_INVOCATIONS, routes.AZURE_SCORING])
def test_wrong_feature_count(client: httpx.Client, path: str) -> None:
    assert_error(client.post(path, json=[[1.0, 2.0, 3.0]]), 400, "expected 4 features", "got 3")
    answer = client.post(path, content=b"1,2,3,4,5\n", headers={"content-type": "text/csv"})
    assert_error(answer, 400, "expected 4 features", "got 5")


def test_wrong_feature_count_vertex_and_oip(client: httpx.Client) -> None:
    answer = client.post(VERTEX_PREDICT, json={"instances": [[1, 2]]})
    assert_error(answer, 400, "expected 4 features")
    answer = client.post("/v2/models/iris/infer", json=tensor([1, 2, 3, 4, 5, 6], [2, 3]))
    assert_error(answer, 400, "expected 4 features")


def test_ragged_rows(client: httpx.Client) -> None:
    answer = client.post(routes.SAGEMAKER_INVOCATIONS, json=[[1, 2, 3, 4], [1, 2]])
    assert_error(answer, 400, "rows of equal length")


@pytest.mark.parametrize(
    "rows",
    [
        [["a", "b", "c", "d"]],
        [[1, 2, 3, None]],
        [[1, 2, 3, {"x": 1}]],
    ],
)
def test_strings_for_a_numeric_model(client: httpx.Client, rows: Any) -> None:
    answer = client.post(routes.SAGEMAKER_INVOCATIONS, json=rows)
    assert_error(answer, 400, "wrong dtype", "FP64")


def test_strings_in_csv(client: httpx.Client) -> None:
    answer = client.post(
        routes.SAGEMAKER_INVOCATIONS, content=b"a,b,c,d\n", headers={"content-type": "text/csv"}
    )
    assert_error(answer, 400, "CSV rows must be numbers")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (tensor([1.5, 2, 3, 4], [1, 4], "INT64"), "must be integers"),
        (tensor(["a", "b", "c", "d"], [1, 4], "FP32"), "must be numbers"),
        (tensor([1, 2, 3, 4], [1, 4], "BYTES"), "wrong dtype"),
        (tensor([1, 2, 3, 4], [1, 4], "FLOAT"), "unknown datatype 'FLOAT'"),
        (tensor([1, 2, 3, 4], [2, 4], "FP32"), "shape [2, 4] needs 8"),
        (tensor([1, 2, 3, 4], [1, -4], "FP32"), "shape must be a list of non-negative"),
        (tensor([1, 2, 3, 4], [1, 4], ["FP32"]), "unknown datatype"),
        ({"inputs": [{"name": "x", "data": [1, 2, 3, 4]}]}, "missing shape, datatype"),
        ({"inputs": [[1, 2, 3, 4]]}, "must be an object"),
        ({"inputs": "x"}, "non-empty list"),
        ({"rows": [1, 2, 3, 4]}, "non-empty list"),
        ([1, 2, 3, 4], "JSON object with 'inputs'"),
        ({**tensor([1, 2, 3, 4], [1, 4]), "parameters": [1]}, "'parameters' must be"),
        ({**tensor([1, 2, 3, 4], [1, 4]), "outputs": ["predict"]}, "'outputs' must be"),
        ({"inputs": tensor([1, 2, 3, 4], [1, 4])["inputs"] * 2}, "takes 1 input tensor, got 2"),
    ],
)
def test_oip_bad_tensors(client: httpx.Client, payload: Any, fragment: str) -> None:
    assert_error(client.post("/v2/models/iris/infer", json=payload), 400, fragment)


@pytest.mark.parametrize(
    ("shape", "data", "fragment"),
    [
        ([True, 4], [1, 2, 3, 4], "shape must be a list of non-negative integers"),
        ([1, True, 4], [1, 2, 3, 4], "shape must be a list of non-negative integers"),
        ([False], [], "shape must be a list of non-negative integers"),
        ([0, 2**63 - 1], [], "shape [0, 9223372036854775807] cannot be made"),
    ],
)
def test_oip_shapes_numpy_cannot_make(
    client: httpx.Client, shape: list[Any], data: list[int], fragment: str
) -> None:
    """Found by schemathesis (test_oip_schemathesis.py): a boolean dimension, or an empty
    tensor with a dimension past numpy's index range, was a 500 with a traceback."""
    answer = client.post("/v2/models/iris/infer", json=tensor(data, shape))
    assert_error(answer, 400, fragment)


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        (routes.SAGEMAKER_INVOCATIONS, b"[]", {"content-type": "application/json"}),
        (routes.SAGEMAKER_INVOCATIONS, b"[[]]", {"content-type": "application/json"}),
        (routes.SAGEMAKER_INVOCATIONS, b'{"instances": []}', {"content-type": "application/json"}),
        (routes.SAGEMAKER_INVOCATIONS, b"\n", {"content-type": "text/csv"}),
        (VERTEX_PREDICT, b'{"instances": []}', {}),
        (
            "/v2/models/iris/infer",
            b'{"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []}]}',
            {},
        ),
    ],
)
def test_empty_batch(client: httpx.Client, path: str, body: bytes, headers: dict[str, str]) -> None:
    assert_error(client.post(path, content=body, headers=headers), 400, "empty batch")


def test_empty_npy_batch(client: httpx.Client) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.zeros((0, 4)))
    answer = client.post(
        routes.SAGEMAKER_INVOCATIONS,
        content=buffer.getvalue(),
        headers={"content-type": "application/x-npy"},
    )
    assert_error(answer, 400, "empty batch")


def test_invalid_npy(client: httpx.Client) -> None:
    answer = client.post(
        routes.SAGEMAKER_INVOCATIONS,
        content=b"\x93NUMPY garbage",
        headers={"content-type": "application/x-npy"},
    )
    assert_error(answer, 400, "not a valid .npy array")


def big_body() -> bytes:
    row = b"[5.1, 3.5, 1.4, 0.2],"
    return b"[" + row * (SMALL_BODY_LIMIT // len(row) + 1) + b"[5.1, 3.5, 1.4, 0.2]]"


@pytest.mark.parametrize("path", [routes.SAGEMAKER_INVOCATIONS, "/v2/models/iris/infer"])
def test_body_over_the_limit_with_content_length(client: httpx.Client, path: str) -> None:
    body = big_body()
    assert len(body) > SMALL_BODY_LIMIT
    answer = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_error(answer, 413, f"{SMALL_BODY_LIMIT}-byte limit")


def test_body_over_the_limit_chunked(client: httpx.Client) -> None:
    body = big_body()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    answer = client.post(
        routes.SAGEMAKER_INVOCATIONS, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in answer.request.headers
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert_error(answer, 413, f"{SMALL_BODY_LIMIT}-byte limit")


def test_body_over_the_limit_in_one_chunk(client: httpx.Client) -> None:
    body = big_body()
    answer = client.post(
        routes.SAGEMAKER_INVOCATIONS,
        content=iter([body]),
        headers={"content-type": "application/json"},
    )
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert_error(answer, 413, f"{SMALL_BODY_LIMIT}-byte limit")


def test_body_under_the_limit_chunked(client: httpx.Client, sklearn_model: Any) -> None:
    answer = client.post(
        routes.SAGEMAKER_INVOCATIONS,
        content=iter([b"[[5.1, 3.5, ", b"1.4, 0.2]]"]),
        headers={"content-type": "application/json"},
    )
    assert answer.json() == {"predictions": sklearn_model.predict([[5.1, 3.5, 1.4, 0.2]]).tolist()}


@pytest.mark.parametrize(
    ("method", "path", "fragment"),
    [
        ("GET", "/v2/models/resnet", "unknown model 'resnet'"),
        ("GET", "/v2/models/resnet/ready", "unknown model 'resnet'"),
        ("POST", "/v2/models/resnet/infer", "unknown model 'resnet'"),
        ("POST", "/v2/models/iris/versions/7/infer", "unknown version '7'"),
        ("GET", "/v2/models/iris/versions/7/ready", "unknown version '7'"),
        ("POST", "/v2/models/iris/explain", "no route"),
        ("GET", "/nothing/here", "no route /nothing/here"),
        ("POST", "/predict", "no route /predict"),
    ],
)
def test_not_found(client: httpx.Client, method: str, path: str, fragment: str) -> None:
    answer = client.request(method, path, json=tensor([1, 2, 3, 4], [1, 4]))
    assert_error(answer, 404, fragment)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", routes.SAGEMAKER_INVOCATIONS, "POST"),
        ("PUT", routes.SAGEMAKER_INVOCATIONS, "POST"),
        ("POST", routes.SAGEMAKER_PING, "GET"),
        ("DELETE", routes.OIP_READY, "GET"),
        ("GET", "/v2/models/iris/infer", "POST"),
        ("POST", routes.METRICS, "GET"),
        ("GET", VERTEX_PREDICT, "POST"),
    ],
)
def test_wrong_http_method(client: httpx.Client, method: str, path: str, allowed: str) -> None:
    answer = client.request(method, path)
    assert_error(answer, 405, f"{method} is not allowed", allowed)
    assert answer.headers["allow"] == allowed


def test_unknown_method_or_output(client: httpx.Client) -> None:
    answer = client.post(
        routes.SAGEMAKER_INVOCATIONS, json=ROWS, headers={"x-deployer-method": "transform"}
    )
    assert_error(answer, 400, "unknown method 'transform'", "predict, predict_proba")
    answer = client.post(
        VERTEX_PREDICT, json={"instances": ROWS, "parameters": {"method": "decision_function"}}
    )
    assert_error(answer, 400, "unknown method 'decision_function'")
    payload = {**tensor([1, 2, 3, 4], [1, 4]), "outputs": [{"name": "predict"}, {"name": "x"}]}
    assert_error(client.post("/v2/models/iris/infer", json=payload), 400, "unknown method 'x'")


def test_parameters_must_be_an_object(client: httpx.Client) -> None:
    answer = client.post(routes.SAGEMAKER_INVOCATIONS, json={"instances": ROWS, "parameters": 3})
    assert_error(answer, 400, "'parameters' must be a JSON object")
    answer = client.post(VERTEX_PREDICT, json={"instances": ROWS, "parameters": "x"})
    assert_error(answer, 400, "'parameters' must be a JSON object")
    assert_error(client.post(VERTEX_PREDICT, json={"rows": ROWS}), 400, "'instances'")


# --- errors inside the model ----------------------------------------------------------


@pytest.fixture(scope="module")
def raising_server(
    start_server: ServerFactory, testing_predictor_options: dict[str, Any]
) -> Iterator[Any]:
    settings = serving_settings("python", None, flavor_options=testing_predictor_options)
    server = start_server(settings)
    yield server
    server.stop()


@pytest.mark.parametrize(
    "path", [routes.SAGEMAKER_INVOCATIONS, routes.AZURE_SCORING, routes.VERTEX_PREDICT]
)
def test_model_error_is_a_500_and_the_server_goes_on(raising_server: Any, path: str) -> None:
    client = raising_server.client
    answer = client.post(path, json={"instances": [[1, 2, 3, 666]]})
    assert_error(answer, 500, "ModelExploded", "magic input 666 in 1 rows")
    raising_server.assert_alive()
    answer = client.post(path, json={"instances": [[1, 2, 3, 4]]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [10.0]}


def test_model_error_on_oip_infer(raising_server: Any) -> None:
    client = raising_server.client
    answer = client.post("/v2/models/iris/infer", json=tensor([1, 2, 3, 666], [1, 4], "FP64"))
    assert_error(answer, 500, "ModelExploded: magic input 666")
    answer = client.post("/v2/models/iris/infer", json=tensor([1, 2, 3, 4], [1, 4], "FP64"))
    assert answer.json()["outputs"][0]["data"] == [10.0]


def test_a_413_answered_before_its_body_keeps_the_connection(client: httpx.Client) -> None:
    """The answer goes out on the headers alone; the body (just over the limit) then
    arrives and is dropped, and the same connection serves the next request. Whether the
    connection stays open must not depend on how early the answer went out."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(str(client.base_url))
    body = big_body()
    head = (
        f"POST {routes.SAGEMAKER_INVOCATIONS} HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    good = json.dumps(ROWS).encode()
    second = (
        f"POST {routes.SAGEMAKER_INVOCATIONS} HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(good)}\r\n\r\n"
    ).encode() + good
    with socket.create_connection((address.hostname, address.port), timeout=30) as raw:
        raw.sendall(head)
        answer = read_response(raw)
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        assert b"connection: close" not in answer.lower()
        raw.sendall(body)  # all of it after the answer: dropped, not closed on
        raw.sendall(second)
        assert read_response(raw).startswith(b"HTTP/1.1 200 ")


def read_response(raw: Any) -> bytes:
    """One HTTP/1.1 response with a Content-Length, read from a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = raw.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next(
        line.split(b":", 1)[1] for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ))  # fmt: skip
    while len(rest) < length:
        chunk = raw.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        rest += chunk
    return head + b"\r\n\r\n" + rest
