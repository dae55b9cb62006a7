"""Open Inference Protocol v2 (KServe, Triton, MLServer): health, metadata and infer."""

from __future__ import annotations

from typing import Any

import numpy as np

from deployer._version import __version__
from deployer.flavors.base import oip_datatype
from deployer.serving import routes
from deployer.serving.codecs import decode_tensor, parse_json, to_rows
from deployer.serving.errors import BadRequest, NotFound
from deployer.serving.http import Request, Response, Route, health_response, json_response
from deployer.serving.runner import ModelRunner


def encode_tensor(name: str, result: Any) -> dict[str, Any]:
    array = np.asarray(result)
    data = array.ravel()
    if array.dtype.kind in "USO":
        data = data.astype(str)
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": oip_datatype(array.dtype),
        "data": data,
    }


class OIPRoutes:
    """Static OIP routes, and the per-model routes resolved from the path."""

    def __init__(self, runner: ModelRunner) -> None:
        self.runner = runner
        settings = runner.settings
        self.model_name = settings.model_name
        self.model_version = settings.model_version
        self._model_handlers: dict[str, Route] = {
            "": Route("", "oip_model_metadata", {"GET": self.metadata}),
            "ready": Route("", "oip_model_ready", {"GET": self.model_ready}),
            "infer": Route("", "oip_infer", {"POST": self.infer}),
        }

    def static_routes(self) -> list[Route]:
        async def live(request: Request) -> Response:
            return Response(200, b'{"live":true}')

        async def ready(request: Request) -> Response:
            return health_response(self.runner.ready, self.runner.load_error)

        async def server(request: Request) -> Response:
            return json_response({"name": "deployer", "version": __version__, "extensions": []})

        return [
            Route(routes.OIP_LIVE, "oip_live", {"GET": live}),
            Route(routes.OIP_READY, "oip_ready", {"GET": ready}),
            Route(routes.OIP_SERVER, "oip_server", {"GET": server}),
        ]

    def resolve(self, path: str) -> Route:
        """Route for ``/v2/models/{name}[/versions/{v}][/ready|/infer]``, or NotFound."""
        if not path.startswith(routes.OIP_MODELS_PREFIX):
            raise NotFound(f"no route {path}")
        parts = path[len(routes.OIP_MODELS_PREFIX) :].split("/")
        name, rest = parts[0], parts[1:]
        if name != self.model_name:
            raise NotFound(f"unknown model {name!r}; this server serves {self.model_name!r}")
        if len(rest) >= 2 and rest[0] == "versions":
            if rest[1] != self.model_version:
                raise NotFound(
                    f"unknown version {rest[1]!r} of {name!r}; "
                    f"this server has {self.model_version!r}"
                )
            rest = rest[2:]
        action = rest[0] if rest else ""
        route = self._model_handlers.get(action) if len(rest) <= 1 else None
        if route is None:
            raise NotFound(f"no route {path}")
        return route

    async def metadata(self, request: Request) -> Response:
        runner = self.runner
        body: dict[str, Any] = {
            "name": self.model_name,
            "versions": [self.model_version],
            "platform": runner.settings.flavor,
        }
        if runner.ready:
            body.update(runner.signature.to_dict())
        return json_response(body)

    async def model_ready(self, request: Request) -> Response:
        return health_response(self.runner.ready, self.runner.load_error)

    async def infer(self, request: Request) -> Response:
        payload = parse_json(request.body)
        if not isinstance(payload, dict):
            raise BadRequest("expected a JSON object with 'inputs'")
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise BadRequest("'inputs' must be a non-empty list of tensors")
        if len(inputs) != 1:
            raise BadRequest(f"this model takes 1 input tensor, got {len(inputs)}")
        runner = self.runner
        signature = runner.signature
        rows = to_rows(decode_tensor(inputs[0]), signature)
        parameters = payload.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise BadRequest("'parameters' must be a JSON object")
        requested = payload.get("outputs")
        if requested:
            if not isinstance(requested, list) or not all(
                isinstance(o, dict) and "name" in o for o in requested
            ):
                raise BadRequest("'outputs' must be a list of objects with a 'name'")
            methods = [o["name"] for o in requested]
        else:
            methods = [str(parameters.get("method") or runner.default_method())]
        outputs = [encode_tensor(m, await runner.predict(rows, m, parameters)) for m in methods]
        body: dict[str, Any] = {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "outputs": outputs,
        }
        if "id" in payload:
            body["id"] = payload["id"]
        return json_response(body)
