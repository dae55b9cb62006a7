"""Vertex AI: routes and port from AIP_* variables.

``{"instances": [...], "parameters": {...}}`` in, ``{"predictions": [...]}`` out.
"""

from __future__ import annotations

from collections.abc import Mapping

from deployer.serving import routes
from deployer.serving.codecs import method_from, parse_json, to_rows
from deployer.serving.errors import BadRequest
from deployer.serving.http import Request, Response, Route, health_response, json_response
from deployer.serving.runner import ModelRunner


def vertex_routes(runner: ModelRunner, environ: Mapping[str, str]) -> list[Route]:
    """Health and predict on whatever paths AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE name."""
    health_path = environ.get("AIP_HEALTH_ROUTE") or routes.VERTEX_HEALTH
    predict_path = environ.get("AIP_PREDICT_ROUTE") or routes.VERTEX_PREDICT

    async def health(request: Request) -> Response:
        return health_response(runner.ready, runner.load_error)

    async def predict(request: Request) -> Response:
        # Vertex always sends JSON; the body is parsed whatever the content type says.
        payload = parse_json(request.body)
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise BadRequest('expected {"instances": [...], "parameters": {...}}')
        parameters = payload.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise BadRequest("'parameters' must be a JSON object")
        rows = to_rows(payload["instances"], runner.signature)
        method = method_from(parameters, request.headers, runner.default_method())
        result = await runner.predict(rows, method, parameters)
        return json_response({"predictions": result})

    return [
        Route(health_path, "vertex_health", {"GET": health}),
        Route(predict_path, "vertex_predict", {"POST": predict}),
    ]
