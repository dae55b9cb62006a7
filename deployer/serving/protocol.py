"""The model server's bounded protocol: deployer.serving.bounded_http with its bounds from
this worker's serving settings (limits and defaults: deployer/serving/limits.py)."""

from __future__ import annotations

import functools
import os
import resource

from deployer.serving import routes
from deployer.serving.bounded_http import BoundedProtocol, Bounds
from deployer.serving.connections import connection_cap
from deployer.serving.settings import ServingSettings

__all__ = ["BoundedHttpToolsProtocol", "Bounds", "current_bounds"]


@functools.lru_cache(maxsize=1)
def current_bounds() -> Bounds:
    """The bounds from this worker's settings (DEPLOYER_SERVING_SETTINGS and variables)."""
    settings = ServingSettings.from_environment()
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    cap = connection_cap(settings.max_connections, int(open_files))
    return Bounds(
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_body_bytes=settings.max_body_bytes,
        max_connections=cap.limit,
        health_overflow=cap.health_overflow,
        health_paths=routes.health_paths(os.environ.get("AIP_HEALTH_ROUTE")),
    )


class BoundedHttpToolsProtocol(BoundedProtocol):
    """The server's protocol: bounds from DEPLOYER_SERVING_SETTINGS and the variables."""

    def load_bounds(self) -> Bounds:
        return current_bounds()
