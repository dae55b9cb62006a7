"""A stopped router leaves nothing running: every task it started (health checks,
credential refresh, the manifest watcher, sweepers, the access-log flusher) is cancelled
and awaited by ``Router.stop``, and ``BackgroundRouter`` closes its loop cleanly (no
"Task was destroyed but it is pending!" when the loop is collected)."""

from __future__ import annotations

import asyncio
import gc
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from router_support import LogRecords, RouterThread, fake_backends, manifest, write_manifest

from deployer.router.manifest import Manifest, load
from deployer_router.app import Router

PENDING = "Task was destroyed but it is pending"


def busy_manifest(urls: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """Every kind of background task: active checks (a), credential refresh and
    synthetic predictions (b), an access log, busy polling."""
    token = tmp_path / "token"
    token.write_text("token-1\n")
    return manifest(
        backends=[
            {"name": "a", "url": urls["a"]},
            {
                "name": "b",
                "url": urls["b"],
                "auth": {"kind": "bearer", "token_file": str(token)},
                "health": {"source": "none"},
                "synthetic": {"body": "[[1, 2, 3, 4]]", "interval": 0.2},
            },
        ],
        access_log={"enabled": True, "path": str(tmp_path / "access.log")},
        busy_poll={"enabled": True},
    )


async def fetch(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    """One request on its own connection (``connection: close``); the raw answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
    writer.write(head.encode() + b"connection: close\r\n\r\n" + body)
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


def test_a_stopped_router_leaves_no_task_behind(tmp_path: Path) -> None:
    with fake_backends({"name": "a"}, {"name": "b"}) as (a, b):
        data = busy_manifest({"a": a.url, "b": b.url}, tmp_path)
        source = write_manifest(tmp_path / "router.yaml", data)
        without_b = Manifest.model_validate({**data, "backends": data["backends"][:1]})

        async def scenario() -> list[asyncio.Task[Any]]:
            router = Router(load(source), source, host="127.0.0.1", port=0)
            port = await router.start()
            try:
                answer = await fetch(port, "POST", "/invocations", b"[[1, 2, 3, 4]]")
                assert answer.startswith(b"HTTP/1.1 200"), answer
                health = await fetch(port, "GET", "/-/router/health")
                assert health.startswith(b"HTTP/1.1 200"), health
                # the credential refresh and synthetic checks of b ran
                assert any(s["headers"].get("authorization") == "Bearer token-1" for s in b.seen)
                assert await router.reload(without_b)  # retires b's tasks
                assert await router.reload(Manifest.model_validate(data))  # and starts them
            finally:
                await router.stop(1.0)
            return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

        left = uvloop.run(scenario())
    assert left == [], "tasks still pending after Router.stop"


def test_background_router_closes_its_loop_cleanly(tmp_path: Path) -> None:
    with fake_backends({"name": "a"}, {"name": "b"}) as (a, b):
        data = busy_manifest({"a": a.url, "b": b.url}, tmp_path)
        source = write_manifest(tmp_path / "router.yaml", data)
        with LogRecords("asyncio") as pending, LogRecords("deployer.router") as router_log:
            thread = RouterThread(data, source)
            with thread, httpx.Client(timeout=10) as client:
                answer = client.post(thread.url + "/invocations", content=b"[[1, 2, 3, 4]]")
                assert answer.status_code == 200
                assert client.get(thread.url + "/-/router/health").status_code == 200
                loop = thread._loop
            assert thread._thread is not None and not thread._thread.is_alive()
            assert loop is not None and loop.is_closed()
            assert asyncio.all_tasks(loop) == set()
            del thread, loop
            gc.collect()  # a pending task of a closed loop is reported when collected
    assert not [m for m in pending.messages() if PENDING in m]
    assert not [m for m in router_log.messages() if "left running" in m]


def test_a_router_that_fails_to_start_leaves_nothing_running(tmp_path: Path) -> None:
    with (
        fake_backends({"name": "a"}, {"name": "b"}) as (a, b),
        socket.socket() as taken,
        LogRecords("asyncio") as pending,
    ):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        data = busy_manifest({"a": a.url, "b": b.url}, tmp_path)
        thread = RouterThread(data)
        thread.port = taken.getsockname()[1]  # in use: start() fails after the checks
        with pytest.raises(OSError), thread:
            pass
        assert thread._thread is not None and not thread._thread.is_alive()
        assert thread._loop is not None and thread._loop.is_closed()
        assert asyncio.all_tasks(thread._loop) == set()
        del thread
        gc.collect()
    assert not [m for m in pending.messages() if PENDING in m]


def test_a_reload_parses_the_file_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing a large router.yaml takes seconds; the loop that serves traffic never waits
    for it: the file is read on another thread, and requests are answered meanwhile."""
    import threading

    import deployer_router.app as app_module

    parsing = threading.Event()
    release = threading.Event()
    parsed_on: list[int] = []

    def slow_load(path: Path) -> Manifest:
        parsed_on.append(threading.get_ident())
        parsing.set()
        assert release.wait(60), "the test never released the parse"
        return load(path)

    with fake_backends({"name": "a"}) as (a,):
        source = write_manifest(
            tmp_path / "router.yaml", manifest(backends=[{"name": "a", "url": a.url}])
        )

        async def scenario() -> None:
            router = Router(load(source), source, host="127.0.0.1", port=0)
            port = await router.start()
            loop_thread = threading.get_ident()
            monkeypatch.setattr(app_module, "load", slow_load)
            try:
                reloading = asyncio.create_task(router.reload())
                assert await asyncio.to_thread(parsing.wait, 60)
                # the parse is held; the loop still answers
                answer = await fetch(port, "POST", "/invocations", b"[[1, 2, 3, 4]]")
                assert answer.startswith(b"HTTP/1.1 200"), answer
                release.set()
                assert await reloading
                assert parsed_on and parsed_on[0] != loop_thread
            finally:
                release.set()
                await router.stop(1.0)

        uvloop.run(scenario())
