"""The OIP v2 REST spec and the binary tensor data extension, by hand over HTTP, plus the
body encodings and value checks every POST route shares (issue 12)."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from serving_support import ROWS, SMALL_BODY_LIMIT, npy_bytes, oip_request

INFER = "/v2/models/iris/infer"
HEADER = "Inference-Header-Content-Length"


# --- health and metadata --------------------------------------------------------------


def test_health_bodies_follow_the_spec(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    for path in ("/v2/models/iris/ready", "/v2/models/iris/versions/1/ready"):
        assert client.get(path).json() == {"name": "iris", "ready": True}


@pytest.mark.parametrize("path", ["/v2", "/v2/"])
def test_server_metadata_on_v2_with_and_without_slash(client: httpx.Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "deployer"
    assert "binary_tensor_data" in answer.json()["extensions"]


@pytest.mark.parametrize("request_id", [7, 1.5, True, None, ["a"]])
def test_a_non_string_id_is_refused(client: httpx.Client, request_id: Any) -> None:
    answer = client.post(INFER, json=oip_request(ROWS, id=request_id))
    assert answer.status_code == 400
    assert "'id' must be a string" in answer.json()["error"]


# --- the binary tensor data extension -------------------------------------------------


def binary_request(
    array: np.ndarray, datatype: str, extra: dict[str, Any] | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = array.tobytes()
    head = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(array.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        **(extra or {}),
    }
    encoded = orjson.dumps(head)
    headers = {HEADER: str(len(encoded)), "content-type": "application/octet-stream"}
    return encoded + raw, headers


def split_answer(answer: httpx.Response) -> tuple[dict[str, Any], bytes]:
    length = int(answer.headers[HEADER])
    return json.loads(answer.content[:length]), answer.content[length:]


def test_binary_input_json_output(client: httpx.Client, sklearn_model: Any) -> None:
    rows = ROWS.astype("<f4")
    body, headers = binary_request(rows, "FP32", {"outputs": [{"name": "predict"}]})
    answer = client.post(INFER, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert HEADER.lower() not in answer.headers
    expected = sklearn_model.predict(rows.astype(np.float64)).tolist()
    assert answer.json()["outputs"][0]["data"] == expected


def test_binary_outputs_on_request(client: httpx.Client, sklearn_model: Any) -> None:
    """binary_data_output asks for every output in binary; a per-output binary_data wins."""
    outputs = [{"name": "predict"}, {"name": "predict_proba", "parameters": {"binary_data": False}}]
    extra = {"parameters": {"binary_data_output": True}, "outputs": outputs}
    body, headers = binary_request(ROWS.astype("<f8"), "FP64", extra)
    answer = client.post(INFER, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"
    head, tail = split_answer(answer)
    labels, proba = head["outputs"]
    assert "data" not in labels and labels["parameters"] == {"binary_data_size": len(tail)}
    assert np.frombuffer(tail, "<i8").tolist() == sklearn_model.predict(ROWS).tolist()
    np.testing.assert_allclose(
        np.reshape(proba["data"], (len(ROWS), 3)), sklearn_model.predict_proba(ROWS)
    )


def test_binary_bytes_tensor_for_a_numeric_model_is_a_clear_400(client: httpx.Client) -> None:
    raw = b"".join(struct.pack("<I", len(e)) + e for e in (b"5.1", b"3.5", b"1.4", b"0.2"))
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 4],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    answer = client.post(INFER, content=head + raw, headers={HEADER: str(len(head))})
    assert answer.status_code == 400
    assert "FP64 numbers" in answer.json()["error"]


@pytest.mark.parametrize(
    ("header", "cut", "fragment"),
    [
        ("abc", 0, "must be a byte count"),
        ("999999", 0, "must be a byte count"),
        (None, 4, "only 92 remain"),  # the body lacks binary data the input declares
        (None, -4, "no input declares"),  # extra bytes nobody declared
    ],
)
def test_malformed_binary_requests(
    client: httpx.Client, header: str | None, cut: int, fragment: str
) -> None:
    body, headers = binary_request(ROWS.astype("<f4")[:, :], "FP32")
    if header is not None:
        headers[HEADER] = header
    elif cut > 0:
        body = body[:-cut]
    else:
        body = body + b"\0" * -cut
    answer = client.post(INFER, content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    if cut > 0:
        fragment = f"only {ROWS.size * 4 - cut} remain"
    assert fragment in answer.json()["error"]


# --- Content-Encoding and Accept-Encoding ---------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [gzip.compress, zlib.compress, lambda b: zlib.compress(b)[2:-4]],
    ids=["gzip", "deflate", "raw-deflate"],
)
@pytest.mark.parametrize("path", [INFER, "/invocations", "/score"])
def test_compressed_bodies(
    client: httpx.Client, sklearn_model: Any, encode: Any, path: str
) -> None:
    coding = "gzip" if encode is gzip.compress else "deflate"
    body = orjson.dumps(oip_request(ROWS, "FP64"))
    answer = client.post(
        path,
        content=encode(body),
        headers={"content-encoding": coding, "content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    got = answer.json()
    labels = got["outputs"][0]["data"] if "outputs" in got else got["predictions"]
    assert labels == sklearn_model.predict(ROWS).tolist()


def test_a_zip_bomb_gets_413(client: httpx.Client) -> None:
    bomb = gzip.compress(b" " * (SMALL_BODY_LIMIT * 50))
    assert len(bomb) < SMALL_BODY_LIMIT
    for path in (INFER, "/invocations"):
        answer = client.post(path, content=bomb, headers={"content-encoding": "gzip"})
        assert answer.status_code == 413, answer.text
        assert "decoded body" in answer.json()["error"]


def test_unknown_content_encoding_gets_415(client: httpx.Client) -> None:
    answer = client.post(INFER, content=b"x", headers={"content-encoding": "br"})
    assert answer.status_code == 415
    assert "'br'" in answer.json()["error"]


def test_corrupt_gzip_gets_400(client: httpx.Client) -> None:
    answer = client.post(INFER, content=b"\x1f\x8b not gzip", headers={"content-encoding": "gzip"})
    assert answer.status_code == 400
    assert "not valid gzip" in answer.json()["error"]


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_oip_answers_compressed_when_asked(
    client: httpx.Client, sklearn_model: Any, coding: str
) -> None:
    rows = np.tile(ROWS, (16, 1))  # an answer worth compressing
    request = httpx.Request(
        "POST",
        client.base_url.join(INFER),
        json=oip_request(rows, "FP64"),
        headers={"accept-encoding": coding},
    )
    answer = client.send(request, stream=True)
    raw = answer.read()  # httpx decodes gzip/deflate: compare with what was on the wire
    assert answer.headers["content-encoding"] == coding
    assert int(answer.headers["content-length"]) < len(raw)
    assert json.loads(raw)["outputs"][0]["data"] == sklearn_model.predict(rows).tolist()


def test_small_oip_answers_go_out_uncompressed(client: httpx.Client) -> None:
    answer = client.post(
        INFER, json=oip_request(ROWS[:1], "FP64"), headers={"accept-encoding": "gzip"}
    )
    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers


# --- values that do not fit, and values the model rejects -----------------------------


@pytest.mark.parametrize(
    ("datatype", "value", "fragment"),
    [
        ("INT8", 1000, "value 1000 of tensor 'input-0' is out of range for INT8 (-128 to 127)"),
        ("UINT64", -1, "value -1 of tensor 'input-0' is out of range for UINT64 (0 to 1844"),
        ("INT64", 2**63, f"value {2**63} of tensor 'input-0' is out of range for INT64"),
        ("FP32", 1e39, "value 1e+39 of tensor 'input-0' does not fit FP32"),
    ],
)
def test_values_out_of_range_get_400(
    client: httpx.Client, datatype: str, value: Any, fragment: str
) -> None:
    payload = {
        "inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": datatype, "data": [value, 1, 1, 1]}
        ]
    }
    answer = client.post(INFER, content=json.dumps(payload).encode())
    assert answer.status_code == 400, answer.text
    assert fragment in answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "fragment"),
    [
        (
            INFER,
            json.dumps(oip_request(np.array([[1.0, -1.79e308, 1, 1]]), "FP64")).encode(),
            {},
            "-1.79e+308 in row 0, feature 1",
        ),
        (
            INFER,
            b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[NaN,1,1,1]}]}',
            {},
            "malformed JSON",
        ),
        (
            "/invocations",
            b"1,2,3,4\n5,nan,7,8\n",
            {"content-type": "text/csv"},
            "NaN) nan in row 1, feature 1",
        ),
        (
            "/invocations",
            npy_bytes(np.array([[1.0, 2.0, np.nan, 4.0]])),
            {"content-type": "application/x-npy"},
            "NaN) nan in row 0, feature 2",
        ),
        (
            "/invocations",
            npy_bytes(np.array([[1.0, 2.0, 3.0, np.inf]])),
            {"content-type": "application/x-npy"},
            "infinite value inf in row 0, feature 3",
        ),
    ],
    ids=["fp64-overflow-in-model", "json-nan", "csv-nan", "npy-nan", "npy-inf"],
)
def test_values_the_model_rejects_get_400(
    sklearn_server: Any, path: str, body: bytes, headers: dict[str, str], fragment: str
) -> None:
    server = sklearn_server.server
    before = server.stderr().count("Traceback")
    answer = server.client.post(path, content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert fragment in answer.json()["error"]
    assert server.stderr().count("Traceback") == before


def test_a_bad_request_in_a_batch_fails_alone(client: httpx.Client, sklearn_model: Any) -> None:
    """The NaN request gets its 400; requests batched with it still get predictions."""
    import asyncio

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(client.base_url)) as pool:
            bad = pool.post(
                "/invocations", content=b"1,nan,1,1\n", headers={"content-type": "text/csv"}
            )
            good = [pool.post("/invocations", json=ROWS.tolist()) for _ in range(8)]
            return list(await asyncio.gather(bad, *good))

    bad, *good = asyncio.run(both())
    assert bad.status_code == 400
    expected = sklearn_model.predict(ROWS).tolist()
    assert all(g.status_code == 200 and g.json()["predictions"] == expected for g in good)


# --- SageMaker JSON Lines -------------------------------------------------------------


def test_json_lines_in_and_out(client: httpx.Client, sklearn_model: Any) -> None:
    lines = [
        json.dumps(ROWS[0].tolist()),
        json.dumps({"features": ROWS[1].tolist()}),
        json.dumps({"instances": ROWS[2:].tolist()}),
        "",
    ]
    headers = {"content-type": "application/jsonlines", "accept": "application/jsonlines"}
    answer = client.post("/invocations", content="\n".join(lines).encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/jsonlines"
    got = [json.loads(line) for line in answer.text.splitlines()]
    assert got == sklearn_model.predict(ROWS).tolist()


def test_json_lines_answered_as_json_when_asked(client: httpx.Client, sklearn_model: Any) -> None:
    body = b"\n".join(json.dumps(r).encode() for r in ROWS.tolist())
    headers = {"content-type": "application/jsonlines", "accept": "application/json"}
    answer = client.post("/invocations", content=body, headers=headers)
    assert answer.json() == {"predictions": sklearn_model.predict(ROWS).tolist()}


def test_json_lines_bad_line_is_named(client: httpx.Client) -> None:
    body = b"[1,2,3,4]\n{oops\n"
    answer = client.post(
        "/invocations", content=body, headers={"content-type": "application/jsonlines"}
    )
    assert answer.status_code == 400
    assert "line 2" in answer.json()["error"]
