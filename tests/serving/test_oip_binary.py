"""The binary tensor data extension: splitting bodies, attaching and laying out tensors."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

from deployer.serving.errors import BadRequest
from deployer.serving.oip_binary import attach_binary, split_body, to_bytes, wants_binary


def tensor(datatype: str, size: int, shape: list[int]) -> dict[str, Any]:
    return {
        "name": "x",
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": size},
    }


def test_split_body() -> None:
    assert split_body(b'{"a":1}tail', "7") == (b'{"a":1}', b"tail")
    assert split_body(b'{"a":1}', None) == (b'{"a":1}', b"")
    for bad in ("-1", "x", "100"):
        with pytest.raises(BadRequest, match="byte count"):
            split_body(b"{}", bad)


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64", "UINT8", "BOOL", "INT8"])
def test_numeric_round_trip(datatype: str) -> None:
    from deployer.flavors.base import OIP_TO_NUMPY

    array = np.arange(6).reshape(2, 3).astype(OIP_TO_NUMPY[datatype])
    raw = to_bytes(array, datatype)
    inputs = [tensor(datatype, len(raw), [2, 3])]
    attach_binary(inputs, raw)
    assert inputs[0]["data"].tolist() == array.ravel().tolist()


def test_bytes_elements() -> None:
    raw = to_bytes(np.array(["ab", b"", "c"], dtype=object), "BYTES")
    assert raw == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0) + struct.pack("<I", 1) + b"c"
    inputs = [tensor("BYTES", len(raw), [3])]
    attach_binary(inputs, raw)
    assert inputs[0]["data"].tolist() == [b"ab", b"", b"c"]
    for cut in (1, 3):  # inside the last element; inside its length prefix
        with pytest.raises(BadRequest, match="ends inside"):
            attach_binary([tensor("BYTES", len(raw) - cut, [3])], raw[:-cut])


def test_sizes_must_add_up() -> None:
    with pytest.raises(BadRequest, match="not a whole number of FP32"):
        attach_binary([tensor("FP32", 6, [1])], b"\0" * 6)
    with pytest.raises(BadRequest, match="only 4 remain"):
        attach_binary([tensor("FP32", 8, [2])], b"\0" * 4)
    with pytest.raises(BadRequest, match="4 bytes of binary data no input declares"):
        attach_binary([tensor("FP32", 4, [1])], b"\0" * 8)
    with pytest.raises(BadRequest, match="both JSON data and binary_data_size"):
        attach_binary([{**tensor("FP32", 4, [1]), "data": [1.0]}], b"\0" * 4)
    with pytest.raises(BadRequest, match="must be a byte count"):
        attach_binary([tensor("FP32", -4, [1])], b"")


def test_wants_binary() -> None:
    assert not wants_binary(None, {})
    assert wants_binary(None, {"binary_data_output": True})
    assert not wants_binary(
        {"name": "p", "parameters": {"binary_data": False}}, {"binary_data_output": True}
    )
    assert wants_binary({"name": "p", "parameters": {"binary_data": True}}, {})
    assert wants_binary({"name": "p"}, {"binary_data_output": True})
