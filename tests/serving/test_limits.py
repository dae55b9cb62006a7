"""The server's limits, readiness markers and off-loop work, in-process (the attacks on a
real server are in tests/adversarial/test_server_bounds.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from deployer.config import ServingLimitsConfig
from deployer.serving import limits
from deployer.serving.offload import INLINE_BYTES, INLINE_ROWS, off_loop
from deployer.serving.readiness import STATE_DIR_ENV, WorkerReadiness
from deployer.serving.runner import ModelRunner
from deployer.serving.settings import SETTINGS_ENV, ServingSettings
from deployer.serving.state_dir import shared_state_dir


def test_every_limit_has_a_setting_a_variable_and_a_config_field() -> None:
    fields = set(ServingSettings.__dataclass_fields__)
    assert set(limits.LIMIT_FIELDS) <= fields
    # max_body_bytes keeps its older spelling in deployer.yaml: serving.max_body_mb.
    assert set(ServingLimitsConfig.model_fields) == set(limits.LIMIT_FIELDS) - {"max_body_bytes"}
    defaults = ServingSettings("m", "sklearn", None)
    assert defaults.max_header_bytes == limits.DEFAULT_MAX_HEADER_BYTES
    assert defaults.max_connections == limits.DEFAULT_MAX_CONNECTIONS
    assert limits.env_name("max_headers") == "DEPLOYER_SERVING_MAX_HEADERS"


def test_the_environment_overrides_the_settings() -> None:
    raw = ServingSettings("m", "sklearn", None, max_headers=50).to_json()
    env = {
        SETTINGS_ENV: raw,
        "DEPLOYER_SERVING_MAX_HEADERS": "7",
        "DEPLOYER_SERVING_KEEP_ALIVE_S": "",
    }
    settings = ServingSettings.from_environment(env)
    assert settings.max_headers == 7
    assert settings.keep_alive_s == limits.DEFAULT_KEEP_ALIVE_S


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DEPLOYER_SERVING_MAX_HEADERS", "many", "expected an integer"),
        ("DEPLOYER_SERVING_HEADER_TIMEOUT_S", "soon", "expected a number"),
        ("DEPLOYER_SERVING_MAX_CONNECTIONS", "0", "expected a value >= 1"),
    ],
)
def test_a_bad_variable_is_named(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as caught:
        limits.overrides_from_environment({variable: value})
    assert f"{variable}={value!r}" in str(caught.value)


def test_the_config_section_sets_only_what_it_names() -> None:
    assert ServingLimitsConfig().settings() == {}
    config = ServingLimitsConfig(max_headers=10, body_timeout_s=2.5)
    assert config.settings() == {"max_headers": 10, "body_timeout_s": 2.5}
    with pytest.raises(ValidationError, match="max_header_bytes"):
        ServingLimitsConfig(max_header_bytes=10)
    with pytest.raises(ValidationError, match="bogus"):
        ServingLimitsConfig(bogus=1)  # type: ignore[call-arg]


def test_the_connection_cap_stays_under_the_open_file_limit() -> None:
    assert connection_limit(4096, 1_048_576) == 4096
    cap = limits.connection_cap(4096, 1024)
    assert cap.limit + cap.health_overflow + limits.RESERVED_FDS <= 1024
    assert cap.limit > 0


def connection_limit(configured: int, open_files: int) -> int:
    return limits.connection_cap(configured, open_files).limit


def test_the_open_file_soft_limit_is_raised_to_the_hard_limit() -> None:
    code = (
        "import resource; from deployer.serving.limits import raise_open_files_limit;"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE);"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard));"
        "print(raise_open_files_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr


# --- the directory the workers share ------------------------------------------------------


def test_the_shared_directory_is_fresh_and_writable(tmp_path: Path) -> None:
    path, problem = shared_state_dir({})
    assert problem is None and path is not None
    try:
        assert (path / "metrics").is_dir() and (path / "ready").is_dir()
    finally:
        for sub in ("metrics", "ready"):
            (path / sub).rmdir()
        path.rmdir()


def test_an_unwritable_metrics_directory_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    chosen = str(blocker / "metrics")
    path, problem = shared_state_dir({"PROMETHEUS_MULTIPROC_DIR": chosen})
    assert path is None
    assert problem == f"PROMETHEUS_MULTIPROC_DIR={chosen} is not a writable directory"


# --- readiness across workers -------------------------------------------------------------


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_ready_only_when_every_live_worker_has_loaded(tmp_path: Path) -> None:
    readiness = WorkerReadiness.from_environment(2, {STATE_DIR_ENV: str(tmp_path)})
    assert readiness.all_loaded() == (False, "0 of 2 workers have loaded the model")
    readiness.mark_ready()
    assert readiness.all_loaded() == (False, "1 of 2 workers have loaded the model")
    (tmp_path / "ready" / f"ready-{dead_pid()}").touch()  # a worker that died since
    assert readiness.all_loaded()[0] is False
    (tmp_path / "ready" / f"ready-{os.getppid()}").touch()
    assert readiness.all_loaded() == (True, None)


def test_one_worker_needs_no_directory() -> None:
    readiness = WorkerReadiness.from_environment(1, {})
    readiness.mark_ready()
    assert readiness.all_loaded() == (True, None)


# --- heavy work off the event loop --------------------------------------------------------


def test_large_payloads_are_handled_off_the_event_loop() -> None:
    async def thread_of(size: int) -> int:
        return await off_loop(size, threading.get_ident)

    async def main() -> tuple[int, int, int]:
        return threading.get_ident(), await thread_of(10), await thread_of(INLINE_BYTES + 1)

    loop_thread, small, large = asyncio.run(main())
    assert small == loop_thread
    assert large != loop_thread


class ThreadRecorder:
    """A loaded model whose predict notes the thread it ran on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def predict(self, rows: np.ndarray, method: str, parameters: Any) -> np.ndarray:
        self.threads.append(threading.get_ident())
        return rows.sum(axis=1)


def test_a_large_batch_of_a_builtin_flavour_predicts_off_the_event_loop() -> None:
    runner = ModelRunner(ServingSettings("m", "sklearn", None, batching=False))
    model = ThreadRecorder()
    runner.model = model  # type: ignore[assignment]

    async def main() -> int:
        await runner._call(np.ones((2, 4)), "predict")
        await runner._call(np.ones((INLINE_ROWS + 1, 4)), "predict")
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert model.threads[0] == loop_thread
    assert model.threads[1] != loop_thread
