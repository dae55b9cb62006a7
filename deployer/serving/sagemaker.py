"""SageMaker: ``GET /ping`` (200 once the model is loaded) and ``POST /invocations``."""

from __future__ import annotations

from deployer.serving import routes
from deployer.serving.http import Request, Response, Route, health_response
from deployer.serving.runner import ModelRunner
from deployer.serving.tabular import predict_body


def sagemaker_routes(runner: ModelRunner) -> list[Route]:
    async def ping(request: Request) -> Response:
        return health_response(*runner.health())

    async def invocations(request: Request) -> Response:
        return await predict_body(runner, request)

    return [
        Route(routes.SAGEMAKER_PING, "sagemaker_ping", {"GET": ping}),
        Route(routes.SAGEMAKER_INVOCATIONS, "sagemaker_invocations", {"POST": invocations}),
    ]
