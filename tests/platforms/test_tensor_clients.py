"""Named tensors with BYTES through the protocol's own clients (tritonclient[http] and
kserve's v2 REST client, each in its own venv: tests/clients_support.py) against a real
server running tests/fixtures/tensor_predictors.py:TensorPredictor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clients_support import run_client
from serving_support import FIXTURES, ServerFactory, ServerProcess, serving_settings

EXPECTED = {"total": [15.0, 25.5], "label": ["HÉLLO", "AB"], "length": [5, 2]}
pytestmark = pytest.mark.timeout(1200)  # the first run builds the clients' venvs


@pytest.fixture(scope="module")
def server(start_server: ServerFactory) -> Iterator[ServerProcess]:
    options = {"predictor": "tensor_predictors:TensorPredictor", "code_paths": [str(FIXTURES)]}
    running = start_server(
        serving_settings("python", None, model_name="tensors", flavor_options=options)
    )
    yield running
    running.stop()


def test_tritonclient_named_tensors_json_and_binary(server: ServerProcess) -> None:
    seen = run_client("tritonclient", "triton_tensors.py", f"127.0.0.1:{server.port}", "tensors")
    assert [i["name"] for i in seen["metadata"]["inputs"]] == ["image", "scale", "text"]
    assert seen["binary-0"] == EXPECTED
    assert seen["binary-1"] == EXPECTED


def test_kserve_named_tensors(server: ServerProcess) -> None:
    seen = run_client("kserve", "kserve_tensors.py", server.url, "tensors")
    assert seen == EXPECTED
