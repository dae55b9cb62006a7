"""The router's own routes: ``/-/router/live``, ``/-/router/ready``,
``/-/router/health`` (every backend, available or not and why) and the metrics path."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from deployer_router.proxy import Snapshot, describe
from deployer_router.scrape import CONTENT_TYPE, Collector, exposition
from deployer_router.server import Request, Response

_JSON = [(b"content-type", b"application/json")]


def admin_response(
    request: Request,
    snap: Snapshot,
    collector: Collector,
    ready: Callable[[], bool],
    busy_poll: Callable[[], dict[str, Any]],
) -> Response | None:
    """The answer to one of the router's own routes, or None for a request to forward."""
    path = request.path
    if path == snap.metrics_path:
        return Response(200, [(b"content-type", CONTENT_TYPE.encode())], exposition(collector))
    if path == b"/-/router/live":
        return Response(200, _JSON, b'{"live":true}')
    if path == b"/-/router/ready":
        is_ready = ready()
        return Response(200 if is_ready else 503, _JSON, orjson.dumps({"ready": is_ready}))
    if path == b"/-/router/health":
        now = time.monotonic()
        backends = describe(snap.upstreams, now)
        ok = any(b["available"] for b in backends)
        body = {
            "name": snap.manifest.name,
            "policy": snap.manifest.policy,
            "ok": ok,
            "retry_budget_remaining": snap.budget.remaining(now),
            "busy_poll": busy_poll(),
            "backends": backends,
        }
        return Response(200 if ok else 503, _JSON, orjson.dumps(body))
    return None
