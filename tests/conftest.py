"""Shared fixtures: models trained once per session, and real model-server processes.

``start_server(settings, env)`` launches ``python -m deployer.serving serve`` exactly as
the image does (settings as JSON in DEPLOYER_SERVING_SETTINGS) on a free port of
127.0.0.1, waits until it answers, and kills it at the end of the session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
START_TIMEOUT_S = 60.0
# Variables a platform sets; never inherit them from the shell running the tests.
PLATFORM_VARIABLES = (
    "SAGEMAKER_BIND_TO_PORT",
    "AIP_HTTP_PORT",
    "AIP_HEALTH_ROUTE",
    "AIP_PREDICT_ROUTE",
    "PROMETHEUS_MULTIPROC_DIR",
    "DEPLOYER_SERVING_CONFIG",
)


def free_port() -> int:
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_example(relative: str) -> ModuleType:
    """Import an example script (``examples/onnx/export.py``) by path, without running main."""
    path = EXAMPLES / relative
    name = "example_" + relative.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serving_settings(flavor: str, model_path: Path | str | None, **overrides: Any) -> dict[str, Any]:
    """ServingSettings as the JSON mapping the server reads; a fresh free port each time."""
    settings: dict[str, Any] = {
        "model_name": "iris",
        "flavor": flavor,
        "model_path": None if model_path is None else str(model_path),
        "host": "127.0.0.1",
        "port": free_port(),
    }
    settings.update(overrides)
    return settings


@dataclass
class ServerProcess:
    """A running ``python -m deployer.serving serve`` process and a client for it."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def assert_alive(self) -> None:
        assert self.alive(), f"server exited with {self.process.returncode}:\n{self.log()}"

    def wait_for(self, path: str, status: int = 200, timeout: float = START_TIMEOUT_S) -> None:
        """Poll ``GET path`` until it answers ``status``; fail with the log if it never does."""
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                answer = self.client.get(path, timeout=2.0)
                if answer.status_code == status:
                    return
                last = f"{answer.status_code} {answer.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.05)
        pytest.fail(f"GET {path} did not answer {status} within {timeout}s ({last}):\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit code (SIGKILL if it does not exit in time)."""
        self.client.close()
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


ServerFactory = Callable[..., ServerProcess]


def spawn_server(
    settings: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    log_dir: Path,
) -> ServerProcess:
    """Start the server process without waiting; the port follows the platform variables."""
    extra = dict(env or {})
    environ = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
    environ.update(extra)
    environ["DEPLOYER_SERVING_SETTINGS"] = json.dumps(dict(settings))
    environ["PYTHONUNBUFFERED"] = "1"
    port = int(extra.get("SAGEMAKER_BIND_TO_PORT") or extra.get("AIP_HTTP_PORT") or settings["port"])
    fd, name = tempfile.mkstemp(prefix="server-", suffix=".log", dir=log_dir)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "deployer.serving", "serve"],
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    return ServerProcess(process, port, Path(name))


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

VERTEX_HEALTH = "/v1/endpoints/1/deployedModels/2"
VERTEX_PREDICT = "/v1/endpoints/1/deployedModels/2:predict"
SMALL_BODY_LIMIT = 64 * 1024


@dataclass
class SklearnServer:
    server: ServerProcess
    settings: dict[str, Any]
    env: dict[str, str]


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
def client(sklearn_server: SklearnServer) -> httpx.Client:
    """An httpx client for the shared sklearn server (checked alive after each test)."""
    return sklearn_server.server.client
