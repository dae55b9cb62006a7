"""The server process's life: liveness before readiness, load failures, SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_support import ServerFactory, serving_settings

from deployer.serving import routes

GATE_ENV = "DEPLOYER_TEST_LOAD_GATE"
AIP_HEALTH = "/v1/endpoints/9/deployedModels/8"
READINESS = (
    routes.SAGEMAKER_PING,
    routes.OIP_READY,
    "/v2/models/iris/ready",
    AIP_HEALTH,
    routes.AZURE_READINESS,
)
LIVENESS = (routes.OIP_LIVE, routes.AZURE_LIVENESS)
ROW = [[1.0, 2.0, 3.0, 4.0]]


def test_not_ready_until_the_model_is_loaded(
    start_server: ServerFactory, testing_predictor_options: dict[str, Any], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    settings = serving_settings("python", None, flavor_options=testing_predictor_options)
    env = {GATE_ENV: str(gate), "AIP_HEALTH_ROUTE": AIP_HEALTH}
    server = start_server(settings, env, wait_path=routes.OIP_LIVE)
    client = server.client

    for path in READINESS:
        answer = client.get(path)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.json()["status"] == "not ready"
    for path in LIVENESS:
        assert client.get(path).status_code == 200, path
    # OIP's readiness bodies say it in the spec's own fields too.
    assert client.get(routes.OIP_READY).json()["ready"] is False
    model_ready = client.get("/v2/models/iris/ready").json()
    assert (model_ready["name"], model_ready["ready"]) == ("iris", False)
    answer = client.post(routes.SAGEMAKER_INVOCATIONS, json=ROW)
    assert answer.status_code == 503
    assert "loading" in answer.json()["error"]
    answer = client.post("/v2/models/iris/infer", json={"inputs": []})
    assert answer.status_code in (400, 503)
    # Metadata answers while loading, without the signature it does not know yet.
    assert client.get("/v2/models/iris").json()["name"] == "iris"

    gate.touch()
    server.wait_for(routes.SAGEMAKER_PING, timeout=30)
    for path in READINESS + LIVENESS:
        assert client.get(path).status_code == 200, path
    answer = client.post(routes.SAGEMAKER_INVOCATIONS, json=ROW)
    assert answer.json() == {"predictions": [10.0]}
    assert server.stop() == 0


def test_sigterm_exits_cleanly_and_fast(
    start_server: ServerFactory, testing_predictor_options: dict[str, Any]
) -> None:
    """An idle keep-alive connection does not hold the exit back. The grace period is an
    hour: a server that waited for it would be killed by ``stop`` (exit code -9)."""
    settings = serving_settings(
        "python", None, flavor_options=testing_predictor_options, graceful_shutdown_s=3600.0
    )
    server = start_server(settings)
    with httpx.Client(base_url=server.url, timeout=10.0) as idle:
        assert idle.post(routes.SAGEMAKER_INVOCATIONS, json=ROW).status_code == 200
        code = server.stop(signal.SIGTERM, timeout=60)  # the connection is still open
    assert code == 0, server.log()
    log = server.log()
    assert "Finished server process" in log
    assert "timeout graceful shutdown exceeded" not in log


def test_sigterm_while_loading_exits_cleanly(
    start_server: ServerFactory, testing_predictor_options: dict[str, Any], tmp_path: Path
) -> None:
    settings = serving_settings("python", None, flavor_options=testing_predictor_options)
    server = start_server(settings, {GATE_ENV: str(tmp_path / "never")}, wait_path=routes.OIP_LIVE)
    assert server.client.get(routes.SAGEMAKER_PING).status_code == 503
    assert server.stop(signal.SIGTERM, timeout=30) == 0, server.log()


def wait_for_exit(server: Any, timeout: float = 60) -> int:
    try:
        return int(server.process.wait(timeout))
    except Exception:
        pytest.fail(f"the server did not exit within {timeout}s:\n{server.log()}")


@pytest.mark.parametrize("problem", ["corrupt", "missing"])
def test_model_that_fails_to_load_stops_the_process(
    start_server: ServerFactory, tmp_path: Path, problem: str
) -> None:
    path = tmp_path / "model.onnx"
    if problem == "corrupt":
        path.write_bytes(b"this is not an onnx graph")
    server = start_server(serving_settings("onnx", path), wait_path=None)
    code = wait_for_exit(server)
    stderr = server.stderr()
    assert code != 0, server.log()
    assert "model failed to load" in stderr
    assert str(path) in stderr
    assert "onnx flavour" in stderr or "(flavour onnx)" in stderr


def test_predictor_whose_load_raises_stops_the_process(
    start_server: ServerFactory, testing_predictor_options: dict[str, Any]
) -> None:
    options = {**testing_predictor_options, "predictor": "testing_predictors:NoSuchClass"}
    server = start_server(serving_settings("python", None, flavor_options=options), wait_path=None)
    assert wait_for_exit(server) != 0
    assert "has no class 'NoSuchClass'" in server.stderr()


def test_bad_settings_exit_with_a_message(start_server: ServerFactory) -> None:
    settings = {**serving_settings("sklearn", "model.joblib"), "colour": "blue"}
    server = start_server(settings, wait_path=None)
    assert wait_for_exit(server) == 2
    assert "unknown serving settings: colour" in server.stderr()


def test_a_platform_artifact_is_named_and_the_baked_model_serves(
    start_server: ServerFactory, sklearn_model_path: Path, tmp_path: Path
) -> None:
    """Azure ML and Vertex AI hand the container an artifact of their own: the server says
    it does not use them, and answers with the model in its settings."""
    azure = tmp_path / "azureml-models"
    (azure / "other").mkdir(parents=True)
    (azure / "other" / "model.pkl").write_bytes(b"not ours")
    env = {"AZUREML_MODEL_DIR": str(azure), "AIP_STORAGE_URI": "gs://bucket/artifact"}
    server = start_server(serving_settings("sklearn", sklearn_model_path), env)
    answer = httpx.post(server.url + routes.SAGEMAKER_INVOCATIONS, json=ROW, timeout=30)
    assert answer.status_code == 200, answer.text
    stderr = server.stderr()
    served = f"this image serves the model built into it ({sklearn_model_path})"
    assert f"not using Azure ML's model at AZUREML_MODEL_DIR={azure}: {served}" in stderr
    assert f"not using Vertex AI's artifact at AIP_STORAGE_URI=gs://bucket/artifact: {served}" in (
        stderr
    )
