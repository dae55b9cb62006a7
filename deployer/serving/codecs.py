"""Request bodies to rows of features, and predictions to response bodies.

Content types: application/json, text/csv, application/x-npy and application/jsonlines
(one row, or one request object, per line), in and out.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from numpy.lib import format as npy_format

from deployer.flavors.base import OIP_TO_NUMPY, Signature
from deployer.serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from deployer.serving.rejections import where

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
JSONL = "application/jsonlines"  # SageMaker batch transform's JSON Lines
SUPPORTED = (JSON, CSV, NPY, JSONL)
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY
_INTEGER_TYPES = frozenset(k for k in OIP_TO_NUMPY if k.startswith(("INT", "UINT")))


def media_type(header: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None


def dumps(payload: Any) -> bytes:
    """JSON-encode, handling numpy arrays (object arrays through tolist)."""
    return orjson.dumps(payload, default=_json_default, option=_ORJSON_OPTS)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def to_rows(data: Any, signature: Signature) -> np.ndarray:
    """Validate ``data`` as rows of features and cast it to the model's input dtype."""
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"inputs must be rows of equal length: {exc}") from None
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise BadRequest(f"inputs must be a 2-D batch of rows; got {array.ndim} dimensions")
    if array.shape[0] == 0 or array.size == 0:
        raise BadRequest("empty batch: send at least one row")
    width = signature.width
    if width is not None and array.shape[1] != width:
        raise BadRequest(f"expected {width} features per row, got {array.shape[1]}")
    return cast(array, signature)


def cast(array: np.ndarray, signature: Signature) -> np.ndarray:
    """Cast to the signature dtype, refusing strings for numeric models and lossy casts."""
    target = signature.numpy_dtype
    if target == array.dtype:
        return array
    if target.kind == "O":
        return array.astype(object)
    if array.dtype.kind in "USO":
        raise BadRequest(
            f"wrong dtype: the model takes {signature.datatype} numbers, got {_kind_name(array)}"
            f" ({_first_non_number(array)})"
        )
    if not np.can_cast(array.dtype, target, casting="same_kind"):
        raise BadRequest(f"wrong dtype: cannot cast {array.dtype} input to {signature.datatype}")
    return narrow(array, target, "input", signature.datatype)


def narrow(raw: np.ndarray, target: np.dtype[Any], name: str, datatype: str) -> np.ndarray:
    """``raw`` as ``target``, refusing values that do not fit (no wrapping, no overflow
    to infinity): 400 naming the tensor, the value and the datatype's range."""
    if target.kind in "iu" and raw.dtype.kind in "iuO" and raw.size:
        info = np.iinfo(target)
        low, high = raw.min(), raw.max()
        bad = low if low < info.min else high if high > info.max else None
        if bad is not None:
            raise BadRequest(
                f"value {bad} of tensor {name!r} is out of range for {datatype} "
                f"({info.min} to {info.max})"
            )
    with np.errstate(over="ignore", invalid="ignore"):
        array = raw.astype(target)
    if target.kind == "f" and raw.dtype.kind in "fiu" and array.size:
        overflow = np.isinf(array) & np.isfinite(raw)
        if overflow.any():
            value = float(raw[np.unravel_index(int(np.argmax(overflow)), raw.shape)])
            limit = float(np.finfo(target).max)
            raise BadRequest(
                f"value {value!r} of tensor {name!r} does not fit {datatype} "
                f"(magnitude at most {limit:.7g})"
            )
    return array


def _first_non_number(array: np.ndarray) -> str:
    """Where the first value that is not a usable number is, and the value: what to fix.
    (numpy turns a row mixing numbers and text into all text, so text that reads as a
    number is named only when no other value is to blame.)"""
    for index, value in np.ndenumerate(array):
        if isinstance(value, (bytes, str)):
            try:
                float(value)
            except ValueError:
                return f"{where(index)}: {_shown(value)}"
        elif isinstance(value, int) and not -(2**63) <= value < 2**64:
            return f"{where(index)}: {_shown(value)} does not fit 64 bits"
        elif not isinstance(value, (int, float, np.number)):
            return f"{where(index)}: {_shown(value)}"
    index = next(iter(np.ndindex(array.shape)))
    return f"{where(index)}: {_shown(array[index])} is text, not a number"


def _shown(value: Any) -> str:
    """A value's repr, short enough for an error message."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind_name(array: np.ndarray) -> str:
    if array.dtype.kind == "O":
        kinds = sorted({type(v).__name__ for v in array.ravel()[:20]})
        return "values of type " + ", ".join(kinds)
    return "strings"


def decode_rows(body: bytes, content_type: str) -> tuple[Any, dict[str, Any]]:
    """Decode a SageMaker/Azure body into (raw rows, parameters). JSON accepts several shapes."""
    if content_type in (JSON, ""):
        return _json_rows(parse_json(body))
    if content_type == JSONL:
        return _jsonlines_rows(body)
    if content_type == CSV:
        return _csv_rows(body), {}
    if content_type == NPY:
        return read_npy(body), {}
    raise UnsupportedMediaType(
        f"unsupported content type {content_type!r}; send one of {', '.join(SUPPORTED)}"
    )


def _json_rows(payload: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(payload, list):
        return payload, {}
    if isinstance(payload, dict):
        parameters = payload.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise BadRequest("'parameters' must be a JSON object")
        if "instances" in payload:
            return payload["instances"], parameters
        if "inputs" in payload:
            inputs = payload["inputs"]
            if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
                return _single_tensor(inputs), parameters  # an OIP v2 infer body
            return inputs, parameters
        split = payload.get("dataframe_split")
        if isinstance(split, dict) and "data" in split:
            return split["data"], parameters
    raise BadRequest(
        "expected a JSON array of rows, or an object with 'instances' (and optional 'parameters')"
    )


def _jsonlines_rows(body: bytes) -> tuple[Any, dict[str, Any]]:
    """Each line: one row (an array), or an object as the JSON body takes it (or with
    SageMaker's ``features``). Rows of every line in order; parameters of the first."""
    rows: list[Any] = []
    parameters: dict[str, Any] = {}
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"malformed JSON on line {number}: {exc}") from None
        if isinstance(item, dict) and "features" in item:
            item = [item["features"]]
        elif isinstance(item, list):
            item = [item]
        raw, own = _json_rows(item)
        parameters = parameters or own
        try:
            block = raw if isinstance(raw, np.ndarray) else np.asarray(raw, dtype=object)
        except ValueError:
            raise BadRequest(f"line {number} holds rows of unequal length") from None
        if block.ndim == 3 and block.shape[0] == 1:  # [[row, row]] from a line of rows
            block = block[0]
        rows.extend(_as_rows(block, number))
    if not rows:
        raise BadRequest("empty batch: the JSON Lines body has no rows")
    return rows, parameters


def _as_rows(block: np.ndarray, line: int) -> list[Any]:
    if block.ndim == 1:
        return [block.tolist()]
    if block.ndim == 2:
        return [row.tolist() for row in block]
    raise BadRequest(f"line {line} must hold one row or a list of rows")


def _single_tensor(inputs: list[Any]) -> np.ndarray:
    if len(inputs) != 1:
        raise BadRequest(f"this model takes 1 input tensor, got {len(inputs)}")
    return decode_tensor(inputs[0])


def _csv_rows(body: bytes) -> np.ndarray:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("CSV body is not UTF-8") from None
    if not text.strip():
        raise BadRequest("empty batch: the CSV body has no rows")
    try:
        return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise BadRequest(f"CSV rows must be numbers separated by commas: {exc}") from None


def read_npy(body: bytes) -> np.ndarray:
    """A .npy body as an array (no pickles; 400 when it is not one)."""
    stream = io.BytesIO(body)
    try:
        _check_npy_size(stream)
        stream.seek(0)
        return np.load(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadRequest(f"body is not a valid .npy array: {exc}") from None


def _check_npy_size(stream: io.BytesIO) -> None:
    """Refuse a header that declares more data than the body holds: numpy would allocate
    the declared size first (a MemoryError for a forged shape)."""
    version = npy_format.read_magic(stream)
    if version == (1, 0):
        read_header = npy_format.read_array_header_1_0
    else:
        read_header = npy_format.read_array_header_2_0
    shape, _, dtype = read_header(stream)
    declared = math.prod(shape) * dtype.itemsize
    available = len(stream.getbuffer()) - stream.tell()
    if declared > available:
        raise ValueError(f"the header declares {declared} bytes of data, the body has {available}")


def choose_accept(accept: str | None, content_type: str) -> str:
    """The response type: the first supported type in Accept, else the request's own type."""
    fallback = content_type if content_type in SUPPORTED else JSON
    if not accept:
        return fallback
    for part in accept.split(","):
        kind = media_type(part)
        if kind in SUPPORTED:
            return kind
        if kind in ("*/*", "application/*", ""):
            return fallback
        if kind == "text/*":
            return CSV
    raise NotAcceptable(f"cannot answer with {accept!r}; accepted: {', '.join(SUPPORTED)}")


def encode_predictions(result: Any, accept: str) -> bytes:
    """Predictions as JSON ``{"predictions": [...]}``, CSV lines or a .npy array."""
    if accept == JSON:
        return dumps({"predictions": result})
    array = np.asarray(result)
    if accept == JSONL:  # one line per row, in the order of the rows
        return b"".join(dumps(row) + b"\n" for row in array)
    if accept == CSV:
        out = io.StringIO()
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        fmt = "%s" if array.dtype.kind in "USO" else "%.17g"
        np.savetxt(out, array, delimiter=",", fmt=fmt)
        return out.getvalue().encode()
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def method_from(parameters: Mapping[str, Any], headers: Mapping[str, str], default: str) -> str:
    """Which output a request asks for: parameters.method, X-Deployer-Method, or
    SageMaker's ``X-Amzn-SageMaker-Custom-Attributes: method=...``; else ``default``."""
    method = parameters.get("method") or headers.get("x-deployer-method")
    if not method:
        custom = headers.get("x-amzn-sagemaker-custom-attributes")
        if custom:
            for item in custom.split(","):
                key, _, value = item.partition("=")
                if key.strip() == "method":
                    method = value.strip()
    return str(method) if method else default


def decode_tensor(tensor: Any) -> np.ndarray:
    """One OIP input tensor as a numpy array of its declared datatype and shape."""
    if not isinstance(tensor, dict):
        raise BadRequest("each input must be an object with name, shape, datatype and data")
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in tensor]
    if missing:
        raise BadRequest(f"input tensor is missing {', '.join(missing)}")
    datatype, shape = tensor["datatype"], tensor["shape"]
    if not isinstance(datatype, str) or datatype not in OIP_TO_NUMPY:
        raise BadRequest(
            f"unknown datatype {datatype!r}; expected one of {', '.join(OIP_TO_NUMPY)}"
        )
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise BadRequest(f"shape must be a list of non-negative integers, got {shape!r}")
    try:
        raw = np.asarray(tensor["data"])
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"data is not a regular array: {exc}") from None
    kind = raw.dtype.kind
    if kind in "fO" and datatype in _INTEGER_TYPES and not isinstance(tensor["data"], np.ndarray):
        exact = np.asarray(tensor["data"], dtype=object)
        if _all_ints(exact):  # integers past int64 (numpy made floats or objects of them)
            raw, kind = exact, "i"  # narrow() names the one out of range
    if datatype != "BYTES" and kind in "USO":
        raise BadRequest(f"data of a {datatype} tensor must be numbers, got strings")
    if datatype in _INTEGER_TYPES and kind == "f":
        raise BadRequest(f"data of a {datatype} tensor must be integers, got floats")
    if raw.size != math.prod(shape):
        raise BadRequest(f"data has {raw.size} elements but shape {shape} needs {math.prod(shape)}")
    target = np.dtype(OIP_TO_NUMPY[datatype])
    array = narrow(raw, target, str(tensor["name"]), datatype)
    try:  # an empty tensor can declare a dimension past what numpy can index
        return array.reshape(shape)
    except ValueError as exc:
        raise BadRequest(f"shape {shape} cannot be made: {exc}") from None


def _is_int(value: Any) -> bool:
    """A JSON integer: ``true`` is not a 1."""
    return isinstance(value, int) and not isinstance(value, bool)


def _all_ints(raw: np.ndarray) -> bool:
    return all(_is_int(v) for v in raw.ravel())
