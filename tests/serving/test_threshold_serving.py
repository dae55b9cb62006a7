"""A decision threshold in the serving settings, over HTTP against a real server process:
every contract's predict decides with it; predict_proba is unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from serving_support import ServerFactory, oip_request, serving_settings
from sklearn.linear_model import LogisticRegression

from deployer.serving import routes

THRESHOLD = 0.8
ROWS = np.random.default_rng(3).normal(size=(40, 3))
ROWS_VIA_FP32 = ROWS.astype(np.float32).astype(np.float64)


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 3))
    model = LogisticRegression().fit(rows, np.where(rows[:, 0] + rows[:, 1] > 0, 7, 3))
    path = tmp_path_factory.mktemp("binary") / "model.joblib"
    joblib.dump(model, path)
    return path, model


@pytest.fixture(scope="module")
def client(start_server: ServerFactory, binary_model: tuple[Path, Any]) -> httpx.Client:
    threshold = {"value": THRESHOLD, "positive_label": "7"}
    settings = serving_settings("sklearn", binary_model[0], decision_threshold=threshold)
    return start_server(settings).client


def decided(model: Any, rows: np.ndarray) -> list[int]:
    proba = model.predict_proba(rows)[:, 1]
    return np.where(proba >= THRESHOLD, 7, 3).tolist()


def test_the_threshold_changes_predictions_for_these_rows(binary_model: tuple[Path, Any]) -> None:
    model = binary_model[1]
    assert decided(model, ROWS) != model.predict(ROWS).tolist()


@pytest.mark.parametrize("path", ["/invocations", routes.VERTEX_PREDICT, routes.AZURE_SCORING])
def test_predict_decides_with_the_threshold(
    client: httpx.Client, binary_model: tuple[Path, Any], path: str
) -> None:
    answer = client.post(path, json={"instances": ROWS.tolist()})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == decided(binary_model[1], ROWS)


@pytest.mark.parametrize("path", ["/invocations", routes.VERTEX_PREDICT, routes.AZURE_SCORING])
def test_predict_proba_is_unchanged(
    client: httpx.Client, binary_model: tuple[Path, Any], path: str
) -> None:
    payload = {"instances": ROWS.tolist(), "parameters": {"method": "predict_proba"}}
    answer = client.post(path, json=payload)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], binary_model[1].predict_proba(ROWS))


def test_oip_v2_outputs(client: httpx.Client, binary_model: tuple[Path, Any]) -> None:
    answer = client.post("/v2/models/iris/infer", json=oip_request(ROWS))
    assert answer.status_code == 200, answer.text
    labels, proba = answer.json()["outputs"]
    assert labels["name"] == "predict"
    assert labels["data"] == decided(binary_model[1], ROWS_VIA_FP32)
    expected = binary_model[1].predict_proba(ROWS_VIA_FP32)
    np.testing.assert_allclose(np.reshape(proba["data"], proba["shape"]), expected)


def test_a_model_that_cannot_take_the_threshold_never_becomes_ready(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "regressor.joblib"
    joblib.dump(LinearRegression().fit(ROWS, ROWS[:, 0]), path)
    settings = serving_settings("sklearn", path, decision_threshold={"value": 0.5})
    server = start_server(settings, wait_path=None)
    assert server.process.wait(120) == 3
    assert "a decision threshold needs a binary classifier" in server.stderr()
