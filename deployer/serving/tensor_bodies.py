"""SageMaker, Vertex and Azure bodies for a model with named tensor inputs.

JSON: a list of instances, ``{"instances": [...]}`` (one object ``{name: value}`` per
row, or bare values for a one-input model), ``{"inputs": {name: batch}}`` (columnar; a
bare batch for a one-input model) or ``{"inputs": [OIP tensors]}``; JSON Lines: one
instance per line; .npy: the batch of a one-input model. CSV carries tabular rows only.
Answers: ``{"predictions": [...]}``, one value per row for one output, else one object
``{output: value}`` per row; .npy and CSV hold one output.
"""

from __future__ import annotations

from typing import Any

import orjson

from deployer.flavors.base import Signature
from deployer.serving.codecs import (
    CSV,
    JSON,
    JSONL,
    NPY,
    SUPPORTED,
    decode_tensor,
    dumps,
    encode_predictions,
    parse_json,
    read_npy,
)
from deployer.serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from deployer.serving.tensors import Tensors, check_inputs, from_columns, from_instances, per_row


def decode(body: bytes, content_type: str, signature: Signature) -> tuple[Tensors, dict[str, Any]]:
    """The body's tensors, checked against the signature, and the request's parameters."""
    if content_type in (JSON, ""):
        return _json(parse_json(body), signature)
    if content_type == JSONL:
        return from_instances(_lines(body), signature), {}
    if content_type == NPY:
        if len(signature.inputs) != 1:
            raise UnsupportedMediaType(
                f"a .npy body carries one tensor; this model takes {_names(signature)}: "
                "send application/json"
            )
        return from_columns(read_npy(body), signature), {}
    if content_type == CSV:
        raise UnsupportedMediaType(
            f"text/csv carries tabular rows only; this model takes named tensors "
            f"({_names(signature)}): send application/json"
        )
    raise UnsupportedMediaType(
        f"unsupported content type {content_type!r}; send one of {', '.join(SUPPORTED)}"
    )


def _names(signature: Signature) -> str:
    return ", ".join(spec.name for spec in signature.inputs)


def _json(payload: Any, signature: Signature) -> tuple[Tensors, dict[str, Any]]:
    if isinstance(payload, list):
        return from_instances(payload, signature), {}
    if not isinstance(payload, dict):
        raise BadRequest("expected a JSON object with 'instances' or 'inputs', or a list")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be a JSON object")
    if "instances" in payload:
        return from_instances(payload["instances"], signature), parameters
    if "inputs" in payload:
        inputs = payload["inputs"]
        if (
            isinstance(inputs, list)
            and inputs
            and all(isinstance(t, dict) and "datatype" in t for t in inputs)
        ):  # OIP v2 tensors
            arrays = {str(t.get("name")): decode_tensor(t) for t in inputs}
            return check_inputs(arrays, signature), parameters
        return from_columns(inputs, signature), parameters
    raise BadRequest(
        f"expected 'instances' (one object per row with {_names(signature)}) or 'inputs'"
    )


def _lines(body: bytes) -> list[Any]:
    instances: list[Any] = []
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            instances.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"malformed JSON on line {number}: {exc}") from None
    if not instances:
        raise BadRequest("empty batch: the JSON Lines body has no rows")
    return instances


def encode(outputs: Tensors, accept: str) -> bytes:
    """Named outputs as the answer ``accept`` asks for."""
    if accept == JSON:
        return dumps({"predictions": per_row(outputs)})
    if accept == JSONL:
        return b"".join(dumps(row) + b"\n" for row in per_row(outputs))
    if len(outputs) != 1:
        raise NotAcceptable(
            f"{accept} holds one output; this model answers {', '.join(outputs)}: accept "
            "application/json, or ask for one output with parameters.method"
        )
    return encode_predictions(next(iter(outputs.values())), accept)
