"""The OIP contract as the protocol's own clients see it: tritonclient[http] and kserve's
v2 REST client, each run from its own venv (tests/clients_support.py) against a real
server process. Expected predictions come from the same model file, in this process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clients_support import run_client
from serving_support import (
    ROWS,
    ServerFactory,
    ServerProcess,
    SklearnServer,
    scrape,
    serving_settings,
)

# What the model sees for each input datatype the clients send.
MODEL_INPUT = {
    "FP32": ROWS.astype(np.float32).astype(np.float64),
    "FP64": ROWS,
    "INT64": ROWS.astype(np.int64).astype(np.float64),
}
BATCHES = ("deployer_batch_requests_count", ())
# The first run builds the clients' venvs from PyPI (a minute or two; cached afterwards).
pytestmark = pytest.mark.timeout(1200)


def host_port(sklearn_server: SklearnServer) -> str:
    return f"127.0.0.1:{sklearn_server.server.port}"


def check_outputs(seen: dict[str, Any], model: Any, rows: np.ndarray) -> None:
    assert seen["predict"]["datatype"] == "INT64"
    assert seen["predict"]["data"] == model.predict(rows).tolist()
    assert seen["predict_proba"]["datatype"] == "FP64"
    np.testing.assert_allclose(seen["predict_proba"]["data"], model.predict_proba(rows))


def test_tritonclient_health_and_metadata(sklearn_server: SklearnServer) -> None:
    seen = run_client("tritonclient", "triton_http.py", host_port(sklearn_server), "iris", "health")
    assert (seen["live"], seen["ready"], seen["model_ready"]) == (True, True, True)
    assert "binary_tensor_data" in seen["server"]["extensions"]
    assert seen["model"]["name"] == "iris"
    assert [o["name"] for o in seen["model"]["outputs"]] == ["predict", "predict_proba"]


def test_tritonclient_infer_json_binary_and_compressed(
    sklearn_server: SklearnServer, sklearn_model: Any
) -> None:
    seen = run_client("tritonclient", "triton_http.py", host_port(sklearn_server), "iris", "infer")
    for datatype, rows in MODEL_INPUT.items():
        for binary_in in (0, 1):
            for binary_out in (0, 1):
                answer = seen[f"{datatype}-in{binary_in}-out{binary_out}"]
                assert answer["id"] == "r-1"
                check_outputs(answer["outputs"], sklearn_model, rows)
                assert answer["outputs"]["predict"]["binary"] is bool(binary_out)
    every = seen["all-outputs"]["outputs"]
    assert set(every) == {"predict", "predict_proba"}  # no outputs named: every output
    assert every["predict"]["binary"] and every["predict_proba"]["binary"]
    check_outputs(every, sklearn_model, ROWS)
    many = np.tile(MODEL_INPUT["FP32"], (64, 1))
    for algorithm in ("gzip", "deflate"):  # JSON in, JSON out: both compressed
        check_outputs(seen[f"compressed-{algorithm}"]["outputs"], sklearn_model, many)


def test_tritonclient_sees_a_400_for_what_the_model_rejects(sklearn_server: SklearnServer) -> None:
    seen = run_client("tritonclient", "triton_http.py", host_port(sklearn_server), "iris", "errors")
    assert seen["nan"]["status"] == "400", seen
    assert "NaN" in seen["nan"]["message"] and "feature 0" in seen["nan"]["message"]


@pytest.fixture(scope="module")
def batching_server(start_server: ServerFactory, sklearn_model_path: Path) -> ServerProcess:
    """Micro-batching with a one-second window: requests that arrive within a second of
    each other can share a predict call (tritonclient's greenlets send in turn, so a
    flush on the next loop turn would see them one at a time)."""
    settings = serving_settings("sklearn", sklearn_model_path, max_batch_wait_ms=1000.0)
    return start_server(settings)


def test_tritonclient_requests_share_predict_calls(
    batching_server: ServerProcess, sklearn_model: Any
) -> None:
    """tritonclient always sends binary_data_output: it must not split micro-batches.

    Requests that bypass the batcher make exactly two predict calls each (no outputs
    named: predict and predict_proba); 200 requests in flight together that can be
    batched make fewer, whatever the machine's pace."""
    count = 200
    before = scrape(batching_server.client).get(BATCHES, 0.0)
    address = f"127.0.0.1:{batching_server.port}"
    seen = run_client("tritonclient", "triton_http.py", address, "iris", "concurrent", str(count))
    calls = scrape(batching_server.client)[BATCHES] - before
    assert seen["answers"] == count
    expected = sklearn_model.predict(MODEL_INPUT["FP32"]).tolist()
    assert seen["distinct_labels"] == [json.dumps(expected)]
    assert calls < 2 * count, f"{calls:.0f} predict calls for {count} concurrent requests"
    batching_server.assert_alive()


def test_kserve_rest_client(sklearn_server: SklearnServer, sklearn_model: Any) -> None:
    url = f"http://{host_port(sklearn_server)}"
    seen = run_client("kserve", "kserve_rest.py", url, "iris")
    assert seen["server_ready"] is True
    assert seen["server_live"] is True
    assert seen["model_ready"] is True
    for datatype, rows in MODEL_INPUT.items():
        for binary in (0, 1):
            answer = seen[f"{datatype}-binary{binary}"]
            assert answer["id"] == "k-1"
            check_outputs(answer["outputs"], sklearn_model, rows)


@pytest.fixture(autouse=True)
def _server_survives(sklearn_server: SklearnServer) -> Any:
    yield
    sklearn_server.server.assert_alive()
