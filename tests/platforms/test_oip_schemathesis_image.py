"""schemathesis against the built image, with the published OIP v2 OpenAPI document
adapted as tests/oip_schemathesis_support.py explains (the same run as
tests/platforms/test_oip_schemathesis.py, through the image's own entrypoint, settings
and runtime). The container publishes on 127.0.0.1 only, and is removed afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from oip_schemathesis_support import assert_clean, run_schemathesis

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]
OPERATIONS = 10


def test_schemathesis_finds_nothing_in_the_image(
    docker: Any, iris_image: Any, iris_project: Any, tmp_path: Path
) -> None:
    from deployer.image.containers import run_container, wait_healthy

    settings = iris_project.serving_settings()
    running = run_container(docker, iris_image.id, labels={"dev.deployer.test": "schemathesis"})
    try:
        wait_healthy(running, "/v2/health/ready", timeout=120)
        running.container.reload()
        bindings = running.container.attrs["NetworkSettings"]["Ports"]["8080/tcp"]
        assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}, bindings
        outcome = run_schemathesis(
            running.url, settings.model_name, settings.model_version, tmp_path
        )
        assert_clean(outcome, OPERATIONS)
        running.container.reload()
        assert running.container.status == "running", running.logs(50)
        assert "Traceback" not in running.logs(10_000), running.logs(200)
    finally:
        running.remove()
