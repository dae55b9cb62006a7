"""OIP's binary tensor data extension (Triton's ``binary_data``).

A request or answer is a JSON header followed by raw tensor bytes; the
``Inference-Header-Content-Length`` header gives the JSON's length. Numeric tensors are
little-endian, row-major; a BYTES element is a 4-byte little-endian length, then bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from deployer.flavors.base import OIP_TO_NUMPY
from deployer.serving.errors import BadRequest

HEADER = "inference-header-content-length"
EXTENSION = "binary_tensor_data"
OCTET_STREAM = "application/octet-stream"


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary tail) of a request body; all JSON without the header."""
    if header_length is None:
        return body, b""
    if not header_length.strip().isdigit() or int(header_length) > len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {header_length!r} must be a byte count "
            f"no larger than the body ({len(body)} bytes)"
        )
    length = int(header_length)
    return body[:length], body[length:]


def attach_binary(inputs: list[Any], tail: bytes) -> None:
    """Replace each input's ``data`` by its slice of ``tail`` (binary_data_size), in order."""
    offset = 0
    for tensor in inputs:
        if not isinstance(tensor, dict):
            continue
        parameters = tensor.get("parameters")
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        name = tensor.get("name")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(f"binary_data_size of input {name!r} must be a byte count")
        if offset + size > len(tail):
            raise BadRequest(
                f"input {name!r} declares {size} bytes of binary data; "
                f"only {len(tail) - offset} remain in the body"
            )
        if "data" in tensor:
            raise BadRequest(f"input {name!r} has both JSON data and binary_data_size")
        tensor["data"] = _from_bytes(tensor, tail[offset : offset + size])
        offset += size
    if offset != len(tail):
        raise BadRequest(
            f"the body has {len(tail) - offset} bytes of binary data no input declares"
        )


def _from_bytes(tensor: dict[str, Any], chunk: bytes) -> np.ndarray:
    name, datatype = tensor.get("name"), tensor.get("datatype")
    if datatype not in OIP_TO_NUMPY:
        raise BadRequest(f"unknown datatype {datatype!r} of input {name!r}")
    if datatype == "BYTES":
        return _bytes_elements(name, chunk)
    dtype = np.dtype(OIP_TO_NUMPY[datatype]).newbyteorder("<")
    if len(chunk) % dtype.itemsize:
        raise BadRequest(
            f"binary data of input {name!r} ({len(chunk)} bytes) is not a whole number "
            f"of {datatype} elements ({dtype.itemsize} bytes each)"
        )
    return np.frombuffer(chunk, dtype=dtype).astype(dtype.newbyteorder("="))


def _bytes_elements(name: Any, chunk: bytes) -> np.ndarray:
    elements: list[bytes] = []
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise BadRequest(f"binary BYTES data of input {name!r} ends inside a length prefix")
        (length,) = struct.unpack_from("<I", chunk, offset)
        offset += 4
        if offset + length > len(chunk):
            raise BadRequest(f"binary BYTES data of input {name!r} ends inside an element")
        elements.append(chunk[offset : offset + length])
        offset += length
    array = np.empty(len(elements), dtype=object)
    array[:] = elements
    return array


def to_bytes(array: np.ndarray, datatype: str) -> bytes:
    """A tensor's raw bytes, as the binary extension lays them out."""
    if datatype == "BYTES":
        parts: list[bytes] = []
        for value in array.ravel():
            raw = value if isinstance(value, bytes) else str(value).encode()
            parts.append(struct.pack("<I", len(raw)))
            parts.append(raw)
        return b"".join(parts)
    dtype = np.dtype(OIP_TO_NUMPY[datatype]).newbyteorder("<")
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def wants_binary(output: dict[str, Any] | None, parameters: dict[str, Any]) -> bool:
    """Per-output ``binary_data`` wins; else the request's ``binary_data_output``."""
    if output is not None:
        own = output.get("parameters")
        if isinstance(own, dict) and "binary_data" in own:
            return bool(own["binary_data"])
    return bool(parameters.get("binary_data_output", False))
