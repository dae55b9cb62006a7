"""Predict from a SageMaker / Vertex / Azure ML body: rows in JSON, CSV or .npy for a
tabular model, named tensors (deployer.serving.tensor_bodies) for a tensor model."""

from __future__ import annotations

from typing import Any

from deployer.flavors.base import Signature
from deployer.serving import tensor_bodies
from deployer.serving.codecs import (
    choose_accept,
    decode_rows,
    encode_predictions,
    media_type,
    method_from,
    to_rows,
)
from deployer.serving.http import Request, Response, check_response_size
from deployer.serving.offload import off_loop
from deployer.serving.runner import ModelRunner
from deployer.serving.tensors import named_outputs, select


async def predict_body(runner: ModelRunner, request: Request) -> Response:
    """Decode, validate, predict and encode honouring Accept."""
    headers = request.headers
    content_type = media_type(headers.get("content-type"))
    accept = choose_accept(headers.get("accept"), content_type)
    signature = runner.signature
    if signature.is_tensor:
        return await _predict_tensors(runner, request, content_type, accept)
    size = len(request.body)
    rows, parameters = await off_loop(size, _decode, request.body, content_type, signature)
    method = method_from(parameters, headers, runner.default_method())
    result = await runner.predict(rows, method, parameters)
    nbytes = int(getattr(result, "nbytes", 0)) or size  # not an array: guess from the input
    check_response_size(nbytes, runner.settings.max_response_bytes)
    return Response(200, await off_loop(nbytes, encode_predictions, result, accept), accept)


async def _predict_tensors(
    runner: ModelRunner, request: Request, content_type: str, accept: str
) -> Response:
    """One call returns every output; ``method`` (asked, or deployer.yaml's model.method)
    keeps only that one."""
    signature = runner.signature
    size = len(request.body)
    tensors, parameters = await off_loop(
        size, tensor_bodies.decode, request.body, content_type, signature
    )
    default = runner.settings.default_method or ""  # model.method: one output by default
    asked = method_from(parameters, request.headers, default) or None
    result = await runner.predict(tensors, signature.methods[0], parameters)
    outputs = select(named_outputs(result, signature), asked)
    nbytes = sum(int(a.nbytes) for a in outputs.values()) or size
    check_response_size(nbytes, runner.settings.max_response_bytes)
    return Response(200, await off_loop(nbytes, tensor_bodies.encode, outputs, accept), accept)


def _decode(body: bytes, content_type: str, signature: Signature) -> tuple[Any, dict[str, Any]]:
    raw, parameters = decode_rows(body, content_type)
    return to_rows(raw, signature), parameters
