"""Predict from a body of rows in JSON, CSV or .npy: shared by SageMaker and Azure ML."""

from __future__ import annotations

from deployer.serving.codecs import (
    choose_accept,
    decode_rows,
    encode_predictions,
    media_type,
    method_from,
    to_rows,
)
from deployer.serving.http import Request, Response
from deployer.serving.runner import ModelRunner


async def predict_body(runner: ModelRunner, request: Request) -> Response:
    """Decode, validate, predict and encode honouring Accept."""
    headers = request.headers
    content_type = media_type(headers.get("content-type"))
    accept = choose_accept(headers.get("accept"), content_type)
    raw, parameters = decode_rows(request.body, content_type)
    signature = runner.signature
    rows = to_rows(raw, signature)
    method = method_from(parameters, headers, runner.default_method())
    result = await runner.predict(rows, method, parameters)
    return Response(200, encode_predictions(result, accept), accept)
