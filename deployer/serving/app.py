"""The ASGI app: route table, body limits, errors as JSON, metrics. No web framework,
so the hot path is a dict lookup, one body read and one handler call."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from deployer.serving import metrics, request_context, routes
from deployer.serving.azure import azure_routes
from deployer.serving.compression import decode_body
from deployer.serving.errors import (
    ClientDisconnected,
    HTTPError,
    MethodNotAllowed,
    PayloadTooLarge,
)
from deployer.serving.http import Request, Response, Route, check_response_size, error_response
from deployer.serving.observing import Observing
from deployer.serving.offload import off_loop
from deployer.serving.oip import OIPRoutes
from deployer.serving.runner import ModelRunner
from deployer.serving.sagemaker import sagemaker_routes
from deployer.serving.settings import ServingSettings
from deployer.serving.vertex import vertex_routes

log = logging.getLogger("deployer.serving")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ServingApp:
    """Answers SageMaker, Vertex AI, Azure ML and OIP v2 requests for one model."""

    def __init__(self, settings: ServingSettings, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.settings = settings
        self.runner = ModelRunner(settings)
        self.observing = Observing.build(settings, env, self.runner.columns)
        self.runner.observers = self.observing.observers
        self.oip = OIPRoutes(self.runner)
        self.metrics = metrics.RequestMetrics()
        self.max_body = settings.max_body_bytes
        self.max_response = settings.max_response_bytes
        table: list[Route] = [
            *sagemaker_routes(self.runner),
            *azure_routes(self.runner),
            *self.oip.static_routes(),
            Route(routes.METRICS, "metrics", {"GET": self._metrics}),
            *vertex_routes(self.runner, env),  # last: AIP_* routes win any clash
        ]
        self.routes: dict[str, Route] = {route.path: route for route in table}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.runner.start()
                self.observing.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.observing.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        name = "unmatched"
        request_id: str | None = None
        try:
            route = self.routes.get(path) or self.oip.resolve(path)
            name = route.name
            handler = route.handlers.get(scope["method"])
            if handler is None:
                allowed = ", ".join(route.handlers)
                raise MethodNotAllowed(
                    f"{scope['method']} is not allowed on {path}; use {allowed}",
                    headers={"allow": allowed},
                )
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            body = b""
            if scope["method"] == "POST":
                request_id = request_context.begin(headers)
                body = await self._read_body(headers, receive)
                coding = headers.get("content-encoding")
                if coding:
                    body = await off_loop(len(body), decode_body, body, coding, self.max_body)
            request = Request(scope["method"], path, scope["query_string"].decode(), headers, body)
            response = await handler(request)
            check_response_size(len(response.body), self.max_response)
        except ClientDisconnected:
            self.metrics.observe(name, 499, time.perf_counter() - started)
            return
        except HTTPError as exc:
            response = error_response(exc.status, exc.message, exc.headers)
        except Exception as exc:  # the model raised: answer 500 and keep serving
            log.exception("error on %s", path)
            response = error_response(500, f"{type(exc).__name__}: {exc}")
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type.encode()),
                    (b"content-length", str(len(response.body)).encode()),
                    *response.headers,
                    *_request_id_header(request_id),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        self.metrics.observe(name, response.status, time.perf_counter() - started)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.max_body
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
        # A chunked body has no Content-Length, and may arrive as one message: count it all.
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body is over the {limit}-byte limit")
            chunks.append(chunk)
            more_body = bool(message.get("more_body"))
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _metrics(self, request: Request) -> Response:
        return Response(
            200, metrics.render(self.observing.collectors), metrics.METRICS_CONTENT_TYPE
        )


def _request_id_header(request_id: str | None) -> tuple[tuple[bytes, bytes], ...]:
    """Every POST answer names its request (feedback labels join on it later)."""
    if request_id is None:
        return ()
    return ((b"x-request-id", request_id.encode("latin-1")),)


def create_app() -> ServingApp:
    """Factory for uvicorn workers: settings come from the environment."""
    settings = ServingSettings.from_environment()
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, format=log_format)
    return ServingApp(settings)
