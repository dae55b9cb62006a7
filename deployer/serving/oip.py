"""Open Inference Protocol v2 (KServe, Triton, MLServer): health, metadata and infer."""

from __future__ import annotations

from typing import Any

import numpy as np

from deployer._version import __version__
from deployer.flavors.base import Signature, oip_datatype
from deployer.serving import oip_binary, routes
from deployer.serving.codecs import decode_tensor, dumps, parse_json, to_rows
from deployer.serving.compression import MIN_COMPRESS_BYTES, encode_body, response_encoding
from deployer.serving.errors import BadRequest, NotFound
from deployer.serving.http import (
    Request,
    Response,
    Route,
    check_response_size,
    health_response,
    json_response,
)
from deployer.serving.offload import off_loop
from deployer.serving.runner import ModelRunner
from deployer.serving.tensors import Tensors, check_inputs, named_outputs

EXTENSIONS = [oip_binary.EXTENSION]


def encode_tensor(name: str, result: Any, binary: bool = False) -> tuple[dict[str, Any], bytes]:
    """An output tensor as JSON, and its raw bytes when the client asked for binary data."""
    array = np.asarray(result)
    datatype = oip_datatype(array.dtype)
    tensor: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": datatype}
    if binary:
        raw = oip_binary.to_bytes(array, datatype)
        tensor["parameters"] = {"binary_data_size": len(raw)}
        return tensor, raw
    data = array.ravel()
    if array.dtype.kind in "USO":
        data = data.astype(str)
    tensor["data"] = data
    return tensor, b""


def _requested_outputs(payload: dict[str, Any]) -> list[dict[str, Any]] | None:
    requested = payload.get("outputs")
    if requested is None or requested == []:
        return None
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise BadRequest("'outputs' must be a list of objects with a 'name'")
    seen: set[str] = set()
    for output in requested:
        name = output["name"]
        if name in seen:
            count = sum(1 for o in requested if o["name"] == name)
            raise BadRequest(
                f"output {name!r} is requested {count} times in 'outputs'; name each output once"
            )
        seen.add(name)
    return requested


def _request_id(payload: dict[str, Any]) -> str | None:
    """The spec's ``id`` is a string; tritonclient and kserve send and expect one."""
    if "id" not in payload:
        return None
    value = payload["id"]
    if not isinstance(value, str):
        raise BadRequest(f"'id' must be a string, got {type(value).__name__} {value!r}")
    return value


class OIPRoutes:
    """Static OIP routes, and the per-model routes resolved from the path."""

    def __init__(self, runner: ModelRunner) -> None:
        self.runner = runner
        settings = runner.settings
        self.model_name = settings.model_name
        self.model_version = settings.model_version
        self.max_response_bytes = settings.max_response_bytes
        self._model_handlers: dict[str, Route] = {
            "": Route("", "oip_model_metadata", {"GET": self.metadata}),
            "ready": Route("", "oip_model_ready", {"GET": self.model_ready}),
            "infer": Route("", "oip_infer", {"POST": self.infer}),
        }

    def static_routes(self) -> list[Route]:
        async def live(request: Request) -> Response:
            return Response(200, b'{"live":true}')

        async def ready(request: Request) -> Response:
            return health_response(*self.runner.health(), {"ready": True})

        async def server(request: Request) -> Response:
            return json_response(
                {"name": "deployer", "version": __version__, "extensions": EXTENSIONS}
            )

        return [
            Route(routes.OIP_LIVE, "oip_live", {"GET": live}),
            Route(routes.OIP_READY, "oip_ready", {"GET": ready}),
            Route(routes.OIP_SERVER, "oip_server", {"GET": server}),
            Route(routes.OIP_SERVER_SLASH, "oip_server", {"GET": server}),
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
        body = {"name": self.model_name, "ready": True}
        return health_response(*self.runner.health(), body)

    async def infer(self, request: Request) -> Response:
        headers = request.headers
        runner = self.runner
        signature = runner.signature
        payload, rows = await off_loop(len(request.body), _decode_infer, request, signature)
        parameters = payload.get("parameters") or {}
        request_id = _request_id(payload)
        requested = _requested_outputs(payload)
        if requested is None:  # the spec: every output the model has
            wanted: list[tuple[str, dict[str, Any] | None]] = [(m, None) for m in signature.methods]
        else:
            wanted = [(o["name"], o) for o in requested]
        for method, _ in wanted:
            runner.check_method(method)
        results: list[tuple[str, Any, bool]] = []
        size = 0
        if isinstance(rows, dict):  # named tensors: one call answers every output
            outputs = named_outputs(
                await runner.predict(rows, signature.methods[0], parameters), signature
            )
            if requested is None:
                wanted = [(name, None) for name in outputs]
        for method, output in wanted:
            if isinstance(rows, dict):
                if method not in outputs:
                    raise BadRequest(f"the model returned no output {method!r}")
                result = outputs[method]
            else:
                result = np.asarray(await runner.predict(rows, method, parameters))
            size += result.nbytes
            check_response_size(size, self.max_response_bytes)
            results.append((method, result, oip_binary.wants_binary(output, parameters)))
        body: dict[str, Any] = {"model_name": self.model_name, "model_version": self.model_version}
        if request_id is not None:
            body["id"] = request_id
        accept_encoding = headers.get("accept-encoding")
        return await off_loop(size, _encode_infer, body, results, accept_encoding)


def _decode_infer(
    request: Request, signature: Signature
) -> tuple[dict[str, Any], np.ndarray | Tensors]:
    """The request's JSON object and its inputs: rows for a tabular model, named tensors
    checked against the signature for a tensor model (400 when anything is wrong)."""
    head, tail = oip_binary.split_body(request.body, request.headers.get(oip_binary.HEADER))
    payload = parse_json(head)
    if not isinstance(payload, dict):
        raise BadRequest("expected a JSON object with 'inputs'")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    if len(inputs) != 1 and not signature.is_tensor:
        raise BadRequest(f"this model takes 1 input tensor, got {len(inputs)}")
    oip_binary.attach_binary(inputs, tail)
    if not isinstance(payload.get("parameters") or {}, dict):
        raise BadRequest("'parameters' must be a JSON object")
    if signature.is_tensor:
        return payload, _named_inputs(inputs, signature)
    return payload, to_rows(decode_tensor(inputs[0]), signature)


def _named_inputs(inputs: list[Any], signature: Signature) -> Tensors:
    """Each OIP input by name, its datatype and shape checked against the signature."""
    arrays: dict[str, np.ndarray] = {}
    specs = {spec.name: spec for spec in signature.inputs}
    for tensor in inputs:
        array = decode_tensor(tensor)
        name = str(tensor["name"])
        if name in arrays:
            raise BadRequest(f"input {name!r} is sent twice; send each input once")
        spec = specs.get(name)
        if spec is not None and tensor["datatype"] != spec.datatype:
            raise BadRequest(
                f"input {name!r} is {tensor['datatype']}; the model takes {spec.datatype} "
                f"(shape {list(spec.shape)})"
            )
        arrays[name] = array
    return check_inputs(arrays, signature)


def _encode_infer(
    body: dict[str, Any], results: list[tuple[str, Any, bool]], accept_encoding: str | None
) -> Response:
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for method, result, binary in results:
        tensor, raw = encode_tensor(method, result, binary)
        outputs.append(tensor)
        chunks.append(raw)
    body["outputs"] = outputs
    return _compressed(_infer_response(dumps(body), chunks), accept_encoding)


def _infer_response(head: bytes, chunks: list[bytes]) -> Response:
    """JSON alone, or JSON then the binary outputs with Inference-Header-Content-Length."""
    if not any(chunks):
        return Response(200, head)
    extra = ((oip_binary.HEADER.encode(), str(len(head)).encode()),)
    return Response(200, b"".join([head, *chunks]), oip_binary.OCTET_STREAM, extra)


def _compressed(response: Response, accept_encoding: str | None) -> Response:
    coding = response_encoding(accept_encoding)
    if coding is None or len(response.body) < MIN_COMPRESS_BYTES:
        return response
    response.body = encode_body(response.body, coding)
    response.headers = (*response.headers, (b"content-encoding", coding.encode()))
    return response
