"""Run the model server with uvicorn (uvloop + httptools), one or several worker processes."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from deployer.serving.limits import raise_open_files_limit
from deployer.serving.readiness import STATE_DIR_ENV
from deployer.serving.settings import SETTINGS_ENV, ServingSettings
from deployer.serving.state_dir import METRICS_DIR_ENV, shared_state_dir

PROTOCOL = "deployer.serving.protocol:BoundedHttpToolsProtocol"


def run(settings: ServingSettings, *, port: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT. ``port`` overrides the settings and platform variables."""
    import uvicorn

    from deployer.serving.protocol import current_bounds

    settings = settings.with_platform_port()
    if port is not None:
        settings = replace(settings, port=port)
    raise_open_files_limit()
    shared: Path | None = None
    if settings.workers > 1:
        settings, shared = _prepare_workers(settings)
    os.environ[SETTINGS_ENV] = settings.to_json()
    current_bounds.cache_clear()  # a second run in this process reads its own settings
    try:
        _serve(uvicorn, settings)
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _serve(uvicorn: Any, settings: ServingSettings) -> None:
    uvicorn.run(
        "deployer.serving.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=PROTOCOL,
        timeout_keep_alive=max(1, round(settings.keep_alive_s)),
        access_log=settings.access_log,
        server_header=False,
        timeout_graceful_shutdown=round(settings.graceful_shutdown_s),
        log_level="info",
    )


def _prepare_workers(settings: ServingSettings) -> tuple[ServingSettings, Path | None]:
    """Give the workers a shared directory for metrics and readiness (removed when the
    server stops), or serve with one worker, saying why, when no directory is writable:
    serving works, /metrics then counts that one process."""
    directory, problem = shared_state_dir(os.environ)
    if directory is None:
        print(
            f"warning: serving.workers={settings.workers} needs a writable directory shared "
            f"by the workers ({problem}); serving with 1 worker. Mount a writable /tmp "
            f"(e.g. a tmpfs) or set TMPDIR or {METRICS_DIR_ENV} to a writable directory.",
            file=sys.stderr,
            flush=True,
        )
        os.environ.pop(METRICS_DIR_ENV, None)
        return replace(settings, workers=1), None
    os.environ[STATE_DIR_ENV] = str(directory)
    os.environ.setdefault(METRICS_DIR_ENV, str(directory / "metrics"))
    return settings, directory
