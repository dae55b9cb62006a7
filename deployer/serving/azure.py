"""Azure ML: the liveness, readiness and scoring routes the Azure provider declares."""

from __future__ import annotations

from deployer.serving import routes
from deployer.serving.http import Request, Response, Route, health_response
from deployer.serving.runner import ModelRunner
from deployer.serving.tabular import predict_body


def azure_routes(runner: ModelRunner) -> list[Route]:
    async def live(request: Request) -> Response:
        return health_response(True)

    async def ready(request: Request) -> Response:
        return health_response(*runner.health())

    async def score(request: Request) -> Response:
        return await predict_body(runner, request)

    return [
        Route(routes.AZURE_LIVENESS, "azure_live", {"GET": live}),
        Route(routes.AZURE_READINESS, "azure_ready", {"GET": ready}),
        Route(routes.AZURE_SCORING, "azure_score", {"POST": score}),
    ]
