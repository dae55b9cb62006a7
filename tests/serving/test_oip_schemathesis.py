"""schemathesis (its own venv) against a real server process with the iris model, using
the published OIP v2 OpenAPI document (where it comes from, how it differs from kserve's
and what the test changes in it: tests/oip_schemathesis_support.py).

Checks: no 5xx, every status documented for its operation, every content type and body
as the spec declares them. The cases are bounded and derandomized (the same on every
run); the test reads schemathesis's JUnit XML and JSON reports and names each failing
check, operation and example request.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from oip_schemathesis_support import adapt, assert_clean, published_spec, run_schemathesis
from serving_support import ServerFactory, ServerProcess, serving_settings

# The first run builds schemathesis's venv and downloads the spec's wheel (cached after).
pytestmark = pytest.mark.timeout(1200)
OPERATIONS = 10  # the adapted spec's, listed below


@pytest.fixture(scope="module")
def oip_server(start_server: ServerFactory, sklearn_model_path: Path) -> ServerProcess:
    """The iris model with the image's default settings (no platform variables)."""
    return start_server(serving_settings("sklearn", sklearn_model_path))


def test_the_adapted_spec_keeps_the_protocols_operations() -> None:
    spec = adapt(published_spec(), "iris", "1")
    operations = sorted(
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    )
    assert operations == [
        "GET /v2",
        "GET /v2/",
        "GET /v2/health/live",
        "GET /v2/health/ready",
        "GET /v2/models/{model_name}",
        "GET /v2/models/{model_name}/ready",
        "GET /v2/models/{model_name}/versions/{model_version}",
        "GET /v2/models/{model_name}/versions/{model_version}/ready",
        "POST /v2/models/{model_name}/infer",
        "POST /v2/models/{model_name}/versions/{model_version}/infer",
    ]


def test_schemathesis_finds_nothing(oip_server: ServerProcess, tmp_path: Path) -> None:
    outcome = run_schemathesis(oip_server.url, "iris", "1", tmp_path)
    assert_clean(outcome, OPERATIONS)
    oip_server.assert_alive()
    assert "Traceback" not in oip_server.stderr(), oip_server.log()
