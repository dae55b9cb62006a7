"""Helpers for tests that run the model server as a real process (imported by conftest.py
and the serving tests; pytest puts this folder on sys.path)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deployer.serving import routes

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
START_TIMEOUT_S = 120.0  # generous: a busy machine starts a server slowly
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


def serving_settings(
    flavor: str, model_path: Path | str | None, **overrides: Any
) -> dict[str, Any]:
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
    stdout_path: Path
    stderr_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        """What the process wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log(self) -> str:
        """Everything the process wrote so far, for failure messages."""
        stdout = self.stdout_path.read_text(encoding="utf-8", errors="replace")
        return f"--- stdout\n{stdout}--- stderr\n{self.stderr()}"

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
    platform_port = extra.get("SAGEMAKER_BIND_TO_PORT") or extra.get("AIP_HTTP_PORT")
    port = int(platform_port or settings["port"])
    run_dir = Path(tempfile.mkdtemp(prefix="server-", dir=log_dir))
    stdout_path, stderr_path = run_dir / "stdout.log", run_dir / "stderr.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "deployer.serving", "serve"],
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=run_dir,  # not the repository: the server must not depend on it
        )
    return ServerProcess(process, port, stdout_path, stderr_path)


VERTEX_HEALTH = "/v1/endpoints/1/deployedModels/2"
VERTEX_PREDICT = "/v1/endpoints/1/deployedModels/2:predict"
SMALL_BODY_LIMIT = 64 * 1024


@dataclass
class SklearnServer:
    """The shared iris server, the settings it was started with and its extra environment."""

    server: ServerProcess
    settings: dict[str, Any]
    env: dict[str, str]


# --- request bodies and /metrics, shared by the serving and platform tests ----------

ROWS = np.array(
    [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
)
# What the sklearn model sees for an FP32 tensor: float32 values, cast to its FP64 input.


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def oip_request(rows: np.ndarray, datatype: str = "FP32", **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": datatype,
                "data": rows.ravel().tolist(),
            }
        ],
        **extra,
    }


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    answer = client.get(routes.METRICS)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
