"""The few HTTP types the contract handlers share (a raw-ASGI app, no framework)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from deployer.serving.codecs import JSON, dumps
from deployer.serving.errors import ResponseTooLarge


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    """A path, the metrics label for it, and a handler per HTTP method."""

    path: str
    name: str
    handlers: dict[str, Handler]


def json_response(payload: object, status: int = 200) -> Response:
    return Response(status, dumps(payload))


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    extra = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items())
    return Response(status, dumps({"error": message}), JSON, extra)


def health_response(
    ready: bool, reason: str | None = None, ready_body: dict[str, object] | None = None
) -> Response:
    """The status code carries readiness; the body explains it (``ready_body`` replaces
    the ``{"status": "ready"}`` the cloud probes get, e.g. OIP's ``{"ready": true}``)."""
    if ready:
        return Response(200, dumps(ready_body) if ready_body else b'{"status":"ready"}')
    extra = {**ready_body, "ready": False} if ready_body else {}
    return json_response({**extra, "status": "not ready", "reason": reason or "loading"}, 503)


def check_response_size(size: int, limit: int) -> None:
    """ResponseTooLarge when an answer of ``size`` bytes is over ``limit``."""
    if size > limit:
        raise ResponseTooLarge(
            f"the answer would take at least {size} bytes, over the {limit}-byte response limit "
            "(serving.limits.max_response_bytes); ask for fewer rows or outputs"
        )
