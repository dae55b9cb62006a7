"""Run the model server with uvicorn (uvloop + httptools), one or several worker processes."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

from deployer.serving.settings import SETTINGS_ENV, ServingSettings


def run(settings: ServingSettings, *, port: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT. ``port`` overrides the settings and platform variables."""
    import uvicorn

    settings = settings.with_platform_port()
    if port is not None:
        settings = replace(settings, port=port)
    os.environ[SETTINGS_ENV] = settings.to_json()
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="deployer-metrics-")
    uvicorn.run(
        "deployer.serving.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        access_log=settings.access_log,
        server_header=False,
        timeout_graceful_shutdown=round(settings.graceful_shutdown_s),
        log_level="info",
    )
