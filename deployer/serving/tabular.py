"""Predict from a body of rows in JSON, CSV or .npy: shared by SageMaker and Azure ML."""

from __future__ import annotations

from typing import Any

from deployer.flavors.base import Signature
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


async def predict_body(runner: ModelRunner, request: Request) -> Response:
    """Decode, validate, predict and encode honouring Accept."""
    headers = request.headers
    content_type = media_type(headers.get("content-type"))
    accept = choose_accept(headers.get("accept"), content_type)
    signature = runner.signature
    size = len(request.body)
    rows, parameters = await off_loop(size, _decode, request.body, content_type, signature)
    method = method_from(parameters, headers, runner.default_method())
    result = await runner.predict(rows, method, parameters)
    nbytes = int(getattr(result, "nbytes", 0)) or size  # not an array: guess from the input
    check_response_size(nbytes, runner.settings.max_response_bytes)
    return Response(200, await off_loop(nbytes, encode_predictions, result, accept), accept)


def _decode(body: bytes, content_type: str, signature: Signature) -> tuple[Any, dict[str, Any]]:
    raw, parameters = decode_rows(body, content_type)
    return to_rows(raw, signature), parameters
