"""Fixtures for the router tests: a pool of real model servers (``python -m
deployer.serving serve`` on 127.0.0.1) shared by the session, each restartable on its own
port after a test kills it, and a factory for router processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from router_support import ModelBackend, RouterProcess, start_router, write_manifest
from serving_support import free_port, load_example, serving_settings, spawn_server

POOL_SIZE = 4


@pytest.fixture(scope="session")
def sklearn_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/iris/train.py run into a folder of this session."""
    folder = tmp_path_factory.mktemp("router-model")
    return Path(load_example("iris/train.py").train(folder / "model.joblib"))


@pytest.fixture(scope="session")
def model_pool(
    sklearn_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ModelBackend]]:
    """Four iris model servers, started in parallel once per session."""
    log_dir = tmp_path_factory.mktemp("router-backends")
    pool = []
    for index in range(POOL_SIZE):
        settings = serving_settings("sklearn", sklearn_model_path)
        server = spawn_server(settings, log_dir=log_dir)
        pool.append(ModelBackend(f"m{index}", settings, log_dir, server))
    for backend in pool:
        backend.wait()
    yield pool
    for backend in pool:
        backend.kill()


@pytest.fixture
def models(model_pool: list[ModelBackend]) -> Iterator[list[ModelBackend]]:
    """The pool, every server alive when the test starts (restarted if a test killed it)."""
    dead = [b for b in model_pool if not b.alive()]
    for backend in dead:
        backend.start()
    for backend in dead:
        backend.wait()
    yield model_pool


@pytest.fixture
def router_factory(tmp_path: Path) -> Iterator[Any]:
    """``router_factory(manifest_dict, *args)``: a running router process (stopped after)."""
    started: list[RouterProcess] = []

    def start(data: dict[str, Any], *extra: str) -> RouterProcess:
        path = write_manifest(tmp_path / f"router-{len(started)}.yaml", data)
        router = start_router(path, free_port(), tmp_path, *extra)
        started.append(router)
        return router

    yield start
    for router in started:
        router.stop()
