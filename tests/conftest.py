"""Shared fixtures: models trained once per session, and real model-server processes.

``start_server(settings, env)`` launches ``python -m deployer.serving serve`` exactly as
the image does (settings as JSON in DEPLOYER_SERVING_SETTINGS) on a free port of
127.0.0.1, waits until it answers, and kills it at the end of the session.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import (
    EXAMPLES,
    FIXTURES,
    SMALL_BODY_LIMIT,
    VERTEX_HEALTH,
    VERTEX_PREDICT,
    ServerFactory,
    ServerProcess,
    SklearnServer,
    free_port,
    load_example,
    serving_settings,
    spawn_server,
)


@pytest.fixture(scope="session")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """``start_server(settings, env=None, wait_path="/ping")``: a running server.

    ``wait_path=None`` returns at once (for servers expected to fail); every server still
    running at the end of the session is killed.
    """
    log_dir = tmp_path_factory.mktemp("server-logs")
    started: list[ServerProcess] = []

    def start(
        settings: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        *,
        wait_path: str | None = "/ping",
    ) -> ServerProcess:
        server = spawn_server(settings, env, log_dir=log_dir)
        started.append(server)
        if wait_path is not None:
            server.wait_for(wait_path)
        return server

    yield start
    for server in started:
        server.stop(signal.SIGKILL, timeout=10)


# --- models -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    return features, labels


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def sklearn_model_path(model_dir: Path) -> Path:
    """examples/iris/train.py run into the session's model folder."""
    return Path(load_example("iris/train.py").train(model_dir / "model.joblib"))


@pytest.fixture(scope="session")
def sklearn_model(sklearn_model_path: Path) -> Any:
    import joblib

    return joblib.load(sklearn_model_path)


@pytest.fixture(scope="session")
def onnx_model_path(model_dir: Path) -> Path:
    """examples/onnx/export.py run into the session's model folder."""
    return Path(load_example("onnx/export.py").export(model_dir / "model.onnx"))


@pytest.fixture(scope="session")
def xgboost_model_path(model_dir: Path, iris: tuple[np.ndarray, np.ndarray]) -> Path:
    """A small multi-class xgboost Booster saved as UBJSON."""
    import xgboost as xgb

    features, labels = iris
    train = xgb.DMatrix(features.astype(np.float32), label=labels)
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1}
    booster = xgb.train(params, train, num_boost_round=5)
    path = model_dir / "model.ubj"
    booster.save_model(str(path))
    return path


@pytest.fixture(scope="session")
def lightgbm_model_path(model_dir: Path, iris: tuple[np.ndarray, np.ndarray]) -> Path:
    """A small multi-class LightGBM Booster in its text format (Booster.save_model)."""
    import lightgbm as lgb

    features, labels = iris
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 4, "verbose": -1}
    booster = lgb.train({**params, "num_threads": 1}, lgb.Dataset(features, labels), 4)
    path = model_dir / "lightgbm-model.txt"
    booster.save_model(str(path))
    return path


@pytest.fixture(scope="session")
def catboost_model_path(model_dir: Path, iris: tuple[np.ndarray, np.ndarray]) -> Path:
    """A small CatBoost classifier saved as .cbm."""
    from catboost import CatBoostClassifier

    features, labels = iris
    classifier = CatBoostClassifier(
        iterations=5, depth=2, verbose=0, thread_count=1, allow_writing_files=False
    )
    classifier.fit(features, labels.astype(int))
    path = model_dir / "model.cbm"
    classifier.save_model(str(path))
    return path


@pytest.fixture(scope="session")
def custom_example_dir() -> Path:
    return EXAMPLES / "custom"


@pytest.fixture(scope="session")
def custom_predictor_options(custom_example_dir: Path) -> dict[str, Any]:
    """flavor_options for examples/custom/predictor.py."""
    return {"predictor": "predictor:Predictor", "code_paths": [str(custom_example_dir)]}


@pytest.fixture(scope="session")
def testing_predictor_options() -> dict[str, Any]:
    """flavor_options for tests/fixtures/testing_predictors.py:GatedPredictor."""
    return {"predictor": "testing_predictors:GatedPredictor", "code_paths": [str(FIXTURES)]}


# --- the shared sklearn server ----------------------------------------------------------


@pytest.fixture(scope="session")
def sklearn_server(start_server: ServerFactory, sklearn_model_path: Path) -> SklearnServer:
    """The iris pipeline behind every route, with Vertex's AIP_* variables set and a small
    body limit. The settings name a port the server must NOT use (AIP_HTTP_PORT wins)."""
    settings = serving_settings("sklearn", sklearn_model_path, max_body_bytes=SMALL_BODY_LIMIT)
    env = {
        "AIP_HTTP_PORT": str(free_port()),
        "AIP_HEALTH_ROUTE": VERTEX_HEALTH,
        "AIP_PREDICT_ROUTE": VERTEX_PREDICT,
        "AIP_MODE": "PREDICTION",
    }
    return SklearnServer(start_server(settings, env), settings, env)


@pytest.fixture
def client(sklearn_server: SklearnServer) -> Iterator[httpx.Client]:
    """An httpx client for the shared sklearn server (checked alive after each test)."""
    yield sklearn_server.server.client
    sklearn_server.server.assert_alive()
