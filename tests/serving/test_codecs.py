"""Codecs: bodies to validated rows, predictions to bodies, and OIP tensors."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pytest

from deployer.flavors.base import Signature, TensorSpec
from deployer.serving.codecs import (
    CSV,
    JSON,
    NPY,
    choose_accept,
    decode_rows,
    dumps,
    encode_predictions,
    media_type,
    method_from,
    parse_json,
    to_rows,
)
from deployer.serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from deployer.serving.oip import decode_tensor, encode_tensor

FP64 = Signature(width=4, datatype="FP64", outputs=(TensorSpec("predict", "INT64", (-1,)),))
FP32 = Signature(width=4, datatype="FP32", outputs=(TensorSpec("predict", "FP32", (-1,)),))
ANY_WIDTH = Signature(width=None, datatype="FP64", outputs=(TensorSpec("predict", "FP64", (-1,)),))
TEXT = Signature(width=1, datatype="BYTES", outputs=(TensorSpec("predict", "BYTES", (-1,)),))


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.kind == "O")
    return buffer.getvalue()


# --- media types and JSON -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", JSON),
        ("Application/JSON; charset=utf-8", JSON),
        ("  text/csv ;header=absent", CSV),
        ("", ""),
        (None, ""),
    ],
)
def test_media_type(header: str | None, expected: str) -> None:
    assert media_type(header) == expected


def test_parse_json_errors_are_bad_requests() -> None:
    assert parse_json(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    for body in (b"", b"{", b"NaN", b"[1e999]", b"\xff"):
        with pytest.raises(BadRequest, match="malformed JSON"):
            parse_json(body)


def test_dumps_handles_numpy() -> None:
    payload = {
        "f32": np.array([0.5, 1.5], dtype=np.float32),
        "i64": np.arange(3),
        "strings": np.array(["a", "b"]),
        "objects": np.array(["x", 1], dtype=object),
        "scalar": np.float64(2.5),
        "bytes": b"caf\xc3\xa9",
    }
    assert orjson.loads(dumps(payload)) == {
        "f32": [0.5, 1.5],
        "i64": [0, 1, 2],
        "strings": ["a", "b"],
        "objects": ["x", 1],
        "scalar": 2.5,
        "bytes": "café",
    }
    with pytest.raises(TypeError):
        dumps({"set": {1, 2}})


# --- rows -----------------------------------------------------------------------------


def test_to_rows_casts_to_the_signature_dtype() -> None:
    rows = to_rows([[1, 2, 3, 4], [5, 6, 7, 8]], FP64)
    assert rows.dtype == np.float64
    assert rows.shape == (2, 4)
    assert to_rows([[1.5, 2, 3, 4]], FP32).dtype == np.float32
    assert to_rows([[True, False, True, False]], FP64).tolist() == [[1.0, 0.0, 1.0, 0.0]]
    already = np.ones((1, 4))
    assert to_rows(already, FP64) is already


def test_to_rows_one_row_without_the_batch_dimension() -> None:
    assert to_rows([1, 2, 3, 4], FP64).shape == (1, 4)


def test_to_rows_any_width() -> None:
    assert to_rows([[1, 2]], ANY_WIDTH).shape == (1, 2)


def test_to_rows_text_model_takes_strings() -> None:
    rows = to_rows([["hello"], ["world"]], TEXT)
    assert rows.dtype == object
    assert rows.tolist() == [["hello"], ["world"]]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "empty batch"),
        ([[]], "empty batch"),
        ([[1, 2, 3]], "expected 4 features per row, got 3"),
        ([[[1, 2, 3, 4]]], "2-D batch of rows; got 3 dimensions"),
        (5, "2-D batch of rows; got 0 dimensions"),
        ({"a": 1}, "2-D batch of rows; got 0 dimensions"),
        ([[1, 2, 3, 4], [1, 2]], "rows of equal length"),
        (
            [["1", "2", "3", "4"]],
            "the model takes FP64 numbers, got strings (row 0, feature 0: '1' is text",
        ),
        ([[1, 2, "abc", 4], [1, 2, 3, 4]], "got strings (row 0, feature 2: 'abc')"),
        ([[1, 2, 3, 4], [1, None, 3, 4]], "values of type NoneType, int (row 1, feature 1: None)"),
        ([[1, 2, 3, 2**70]], "values of type int (row 0, feature 3: 1180591620717411303424 does"),
        ([[1, 2, 3, "x" * 100]], "(row 0, feature 3: 'xxxxxxxxxxxx"),
        (np.ones((1, 4), dtype=complex), "cannot cast complex128 input to FP64"),
    ],
)
def test_to_rows_rejects(data: Any, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        to_rows(data, FP64)
    assert fragment in info.value.message
    assert info.value.status == 400


# --- request bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        [[1, 2, 3, 4]],
        {"instances": [[1, 2, 3, 4]]},
        {"inputs": [[1, 2, 3, 4]]},
        {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, 4]]}},
    ],
)
def test_decode_json_shapes(payload: Any) -> None:
    raw, parameters = decode_rows(orjson.dumps(payload), JSON)
    assert raw == [[1, 2, 3, 4]]
    assert parameters == {}


def test_decode_json_parameters_and_missing_content_type() -> None:
    body = orjson.dumps({"instances": [[1, 2, 3, 4]], "parameters": {"method": "predict_proba"}})
    assert decode_rows(body, "") == ([[1, 2, 3, 4]], {"method": "predict_proba"})
    assert decode_rows(body, JSON)[1] == {"method": "predict_proba"}


@pytest.mark.parametrize(
    "payload",
    [{"rows": [[1]]}, "rows", 3, None, {"dataframe_split": [[1]]}],
)
def test_decode_json_unknown_shapes(payload: Any) -> None:
    with pytest.raises(BadRequest, match="expected a JSON array of rows"):
        decode_rows(orjson.dumps(payload), JSON)


def test_decode_json_parameters_must_be_an_object() -> None:
    with pytest.raises(BadRequest, match="'parameters' must be a JSON object"):
        decode_rows(orjson.dumps({"instances": [[1]], "parameters": [1]}), JSON)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"1,2,3,4", [[1, 2, 3, 4]]),
        (b"1,2,3,4\n5,6,7,8\n", [[1, 2, 3, 4], [5, 6, 7, 8]]),
        (b"1,2,3,4\r\n5,6,7,8\r\n", [[1, 2, 3, 4], [5, 6, 7, 8]]),
        (b" 1.5 , -2e3,3,4\n", [[1.5, -2000, 3, 4]]),
    ],
)
def test_decode_csv(body: bytes, expected: list[list[float]]) -> None:
    rows, parameters = decode_rows(body, CSV)
    assert rows.dtype == np.float64
    assert rows.tolist() == expected
    assert parameters == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty batch"),
        (b"\n\n  \n", "empty batch"),
        (b"a,b,c,d\n1,2,3,4\n", "CSV rows must be numbers"),
        (b"1,2,3,4\n1,2\n", "CSV rows must be numbers"),
        (b"1,2,\xff,4", "CSV body is not UTF-8"),
    ],
)
def test_decode_csv_rejects(body: bytes, fragment: str) -> None:
    with pytest.raises(BadRequest, match=fragment):
        decode_rows(body, CSV)


def test_decode_npy_keeps_the_dtype() -> None:
    rows, _ = decode_rows(npy(np.arange(8, dtype=np.float32).reshape(2, 4)), NPY)
    assert rows.dtype == np.float32
    assert rows.shape == (2, 4)
    assert to_rows(rows, FP64).dtype == np.float64


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x93NUMPY",
        b"not an array at all",
        npy(np.array([{"a": 1}], dtype=object)),  # a pickle: never loaded
        npy(np.zeros((2, 4)))[:-8],  # truncated data
    ],
    ids=["empty", "magic-only", "garbage", "pickle", "truncated"],
)
def test_decode_npy_rejects(body: bytes) -> None:
    with pytest.raises(BadRequest, match=r"not a valid \.npy array"):
        decode_rows(body, NPY)


def test_decode_npy_forged_shape_is_refused_before_allocating() -> None:
    """A header claiming petabytes must not reach numpy's allocation (MemoryError, 500)."""
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**13, 4)}
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(bytes(64))
    with pytest.raises(BadRequest, match="declares 320000000000000 bytes"):
        decode_rows(buffer.getvalue(), NPY)


def test_decode_npy_version_2_header() -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ones((3, 4)), version=(2, 0))
    rows, _ = decode_rows(buffer.getvalue(), NPY)
    assert rows.shape == (3, 4)


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "multipart/form-data"])
def test_decode_unsupported_content_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        decode_rows(b"[[1, 2, 3, 4]]", content_type)
    assert info.value.status == 415
    assert content_type in info.value.message


# --- Accept and response bodies -------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "content_type", "expected"),
    [
        (None, JSON, JSON),
        (None, CSV, CSV),
        (None, NPY, NPY),
        (None, "application/xml", JSON),
        ("", CSV, CSV),
        ("*/*", NPY, NPY),
        ("application/*", CSV, CSV),
        ("text/*", JSON, CSV),
        ("application/json; q=0.5", CSV, JSON),
        ("text/html, application/x-npy", JSON, NPY),
        ("TEXT/CSV", JSON, CSV),
    ],
)
def test_choose_accept(accept: str | None, content_type: str, expected: str) -> None:
    assert choose_accept(accept, content_type) == expected


@pytest.mark.parametrize("accept", ["application/xml", "text/html, image/png", "image/*"])
def test_choose_accept_refuses(accept: str) -> None:
    with pytest.raises(NotAcceptable) as info:
        choose_accept(accept, JSON)
    assert info.value.status == 406
    assert accept in info.value.message


def test_encode_json() -> None:
    body = encode_predictions(np.array([0, 2, 1]), JSON)
    assert orjson.loads(body) == {"predictions": [0, 2, 1]}


def test_encode_csv_round_trips_floats_exactly() -> None:
    values = np.array([[0.1, 1 / 3], [2.5e-300, -7.0]])
    text = encode_predictions(values, CSV).decode()
    assert len(text.splitlines()) == 2
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(text), delimiter=","), values)
    assert encode_predictions(np.array([1, 0]), CSV) == b"1\n0\n"
    assert encode_predictions(np.array(["setosa", "virginica"]), CSV) == b"setosa\nvirginica\n"


def test_encode_npy_round_trips() -> None:
    values = np.array([[0.25, 0.75]], dtype=np.float32)
    decoded = np.load(io.BytesIO(encode_predictions(values, NPY)))
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, values)


@pytest.mark.parametrize(
    ("parameters", "headers", "expected"),
    [
        ({}, {}, "predict"),
        ({"method": "predict_proba"}, {}, "predict_proba"),
        ({}, {"x-deployer-method": "predict_proba"}, "predict_proba"),
        ({"method": "a"}, {"x-deployer-method": "b"}, "a"),
        ({}, {"x-amzn-sagemaker-custom-attributes": "method=predict_proba"}, "predict_proba"),
        ({}, {"x-amzn-sagemaker-custom-attributes": "a=1, method = label ,b=2"}, "label"),
        ({}, {"x-amzn-sagemaker-custom-attributes": "trace=on"}, "predict"),
        ({"method": 3}, {}, "3"),
    ],
)
def test_method_from(parameters: dict[str, Any], headers: dict[str, str], expected: str) -> None:
    assert method_from(parameters, headers, "predict") == expected


# --- OIP tensors ----------------------------------------------------------------------


def tensor(data: Any, shape: Any, datatype: Any = "FP32") -> dict[str, Any]:
    return {"name": "input-0", "shape": shape, "datatype": datatype, "data": data}


def test_decode_tensor_shape_and_dtype() -> None:
    array = decode_tensor(tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]))
    assert array.dtype == np.float32
    assert array.shape == (2, 4)
    assert decode_tensor(tensor([[1, 2], [3, 4]], [1, 4], "INT64")).tolist() == [[1, 2, 3, 4]]
    assert decode_tensor(tensor(["a", "b"], [2, 1], "BYTES")).dtype == object


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ([1, 2], "must be an object"),
        ({"name": "x"}, "missing shape, datatype, data"),
        (tensor([1], [1], "FLOAT"), "unknown datatype 'FLOAT'"),
        (tensor([1], [1], ["FP32"]), "unknown datatype ['FP32']"),
        (tensor([1], [1], None), "unknown datatype None"),
        (tensor([1], "1"), "shape must be a list"),
        (tensor([1], [1.0]), "shape must be a list"),
        (tensor([1], [-1]), "shape must be a list"),
        (tensor(["a"], [1]), "must be numbers, got strings"),
        (tensor([1.5], [1], "INT32"), "must be integers, got floats"),
        (tensor([1, 2, 3], [2, 2]), "3 elements but shape [2, 2] needs 4"),
        (tensor([[1, 2], [3]], [3]), "not a regular array"),
    ],
)
def test_decode_tensor_rejects(payload: Any, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode_tensor(payload)
    assert fragment in info.value.message


def test_encode_tensor() -> None:
    encoded, raw = encode_tensor("predict", np.array([[1.5, 2.5]], dtype=np.float32))
    assert raw == b""
    assert (encoded["name"], encoded["shape"], encoded["datatype"]) == ("predict", [1, 2], "FP32")
    assert orjson.loads(dumps(encoded))["data"] == [1.5, 2.5]
    labels, _ = encode_tensor("predict", np.array(["setosa", "virginica"], dtype=object))
    assert labels["datatype"] == "BYTES"
    assert orjson.loads(dumps(labels))["data"] == ["setosa", "virginica"]
    assert encode_tensor("predict", [1, 0])[0]["datatype"] == "INT64"
    assert encode_tensor("predict", np.array([True]))[0]["datatype"] == "BOOL"


def test_encode_tensor_binary() -> None:
    encoded, raw = encode_tensor("p", np.array([[1.5, 2.5]], dtype=np.float32), binary=True)
    assert "data" not in encoded
    assert encoded["parameters"] == {"binary_data_size": 8}
    assert np.frombuffer(raw, "<f4").tolist() == [1.5, 2.5]
    labels, raw = encode_tensor("p", np.array(["ab", "c"], dtype=object), binary=True)
    assert labels["datatype"] == "BYTES"
    assert raw == b"\x02\x00\x00\x00ab\x01\x00\x00\x00c"


@pytest.mark.parametrize(
    ("rows", "signature", "fragment"),
    [
        ([[1e39, 1.0, 1.0, 1.0]], FP32, "value 1e+39 of tensor 'input' does not fit FP32"),
        ([[-3.5e38, 1.0, 1.0, 1.0]], FP32, "value -3.5e+38 of tensor 'input' does not fit FP32"),
    ],
)
def test_to_rows_refuses_values_the_model_dtype_cannot_hold(
    rows: Any, signature: Signature, fragment: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        to_rows(rows, signature)
    assert fragment in caught.value.message


def test_to_rows_keeps_nan_for_the_model_to_judge() -> None:
    """XGBoost and HistGradientBoosting take NaN as missing: the codec passes it on."""
    rows = to_rows([[float("nan"), 1.0, 2.0, 3.0]], FP32)
    assert np.isnan(rows[0, 0]) and rows.dtype == np.float32


@pytest.mark.parametrize(
    ("body", "rows", "parameters"),
    [
        (b"[1,2,3,4]\n[5,6,7,8]\n", [[1, 2, 3, 4], [5, 6, 7, 8]], {}),
        (b'{"features": [1,2,3,4]}\r\n\n[5,6,7,8]', [[1, 2, 3, 4], [5, 6, 7, 8]], {}),
        (
            b'{"instances": [[1,2,3,4]], "parameters": {"method": "p"}}',
            [[1, 2, 3, 4]],
            {"method": "p"},
        ),
        (b"[[1,2,3,4],[5,6,7,8]]\n", [[1, 2, 3, 4], [5, 6, 7, 8]], {}),
    ],
)
def test_json_lines(body: bytes, rows: Any, parameters: dict[str, Any]) -> None:
    assert decode_rows(body, "application/jsonlines") == (rows, parameters)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "no rows"),
        (b"[1,2]\n{bad\n", "line 2"),
        (b'"text"\n', "expected a JSON array of rows"),
    ],
)
def test_json_lines_errors(body: bytes, fragment: str) -> None:
    with pytest.raises(BadRequest, match=fragment):
        decode_rows(body, "application/jsonlines")


def test_json_lines_answer_one_line_per_row() -> None:
    assert encode_predictions(np.array([0, 2]), "application/jsonlines") == b"0\n2\n"
    proba = encode_predictions(np.array([[0.25, 0.75]]), "application/jsonlines")
    assert proba == b"[0.25,0.75]\n"
    assert choose_accept("application/jsonlines", JSON) == "application/jsonlines"
    assert choose_accept(None, "application/jsonlines") == "application/jsonlines"
