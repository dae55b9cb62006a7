"""Vertex AI: routes and port from AIP_* variables.

``predict`` sends ``{"instances": [...], "parameters": {...}}`` and gets
``{"predictions": [...]}``; ``rawPredict`` passes any body through unchanged. The
predict route therefore takes every body ``/invocations`` takes (JSON rows, instances,
OIP tensors, CSV, .npy), honouring Content-Type and Accept.
"""

from __future__ import annotations

from collections.abc import Mapping

from deployer.serving import routes
from deployer.serving.http import Request, Response, Route, health_response
from deployer.serving.runner import ModelRunner
from deployer.serving.tabular import predict_body


def vertex_routes(runner: ModelRunner, environ: Mapping[str, str]) -> list[Route]:
    """Health and predict on whatever paths AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE name."""
    health_path = environ.get("AIP_HEALTH_ROUTE") or routes.VERTEX_HEALTH
    predict_path = environ.get("AIP_PREDICT_ROUTE") or routes.VERTEX_PREDICT

    async def health(request: Request) -> Response:
        return health_response(*runner.health())

    async def predict(request: Request) -> Response:
        return await predict_body(runner, request)

    return [
        Route(health_path, "vertex_health", {"GET": health}),
        Route(predict_path, "vertex_predict", {"POST": predict}),
    ]
