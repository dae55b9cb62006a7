"""The router's own routes: ``/-/router/live``, ``/-/router/ready``,
``/-/router/health`` (every backend, available or not and why; URLs redacted) and the
metrics path.

Where they are served follows router.yaml's ``admin``: by default all of them on the
traffic port; with ``admin.port`` health and metrics move to a listener of their own
(``AdminHandler``) and the traffic port keeps live and ready only (other ``/-/router/``
paths answer 404 there, the metrics path is forwarded like any other); with
``admin.enabled: false`` health and metrics are served nowhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from deployer_router.proxy import Snapshot, describe
from deployer_router.scrape import CONTENT_TYPE, Collector, exposition
from deployer_router.server import Request, Respond, Response

_JSON = [(b"content-type", b"application/json")]
ROUTER_PREFIX = b"/-/router/"
log = logging.getLogger("deployer.router")


def admin_response(
    request: Request,
    snap: Snapshot,
    collector: Collector,
    ready: Callable[[], bool],
    busy_poll: Callable[[], dict[str, Any]],
    *,
    describes: bool = True,
) -> Response | None:
    """The answer to one of the router's own routes, or None for a request to forward.
    ``describes``: serve health and metrics here (else only live and ready)."""
    path = request.path
    if path == b"/-/router/live":
        return Response(200, _JSON, b'{"live":true}')
    if path == b"/-/router/ready":
        is_ready = ready()
        return Response(200 if is_ready else 503, _JSON, orjson.dumps({"ready": is_ready}))
    if not describes:
        if path.startswith(ROUTER_PREFIX):
            return Response(404, _JSON, b'{"error":"not served on this port"}')
        return None
    if path == snap.metrics_path:
        return Response(200, [(b"content-type", CONTENT_TYPE.encode())], exposition(collector))
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


class AdminHandler:
    """The admin listener's handler (``admin.port``): the router's routes, 404 else."""

    def __init__(self, answer: Callable[[Request], Response | None]) -> None:
        self.answer = answer  # the router's routes with health and metrics

    def start(self, request: Request, respond: Respond) -> None:
        try:
            response = self.answer(request)
        except Exception:
            log.exception("admin route failed")
            response = Response(500, _JSON, b'{"error":"internal router error"}')
        if response is None:
            response = Response(404, _JSON, b'{"error":"no such admin route"}')
        respond(request, response)
