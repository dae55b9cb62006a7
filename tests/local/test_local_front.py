"""The local front's proxy (deployer/local/front.py) in-process, in front of a small real
upstream server: its upstream survives a restart, bodies are bounded and streamed, and a
dead upstream is a JSON error that names no internal address. No Docker needed."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from docker_support import free_port

from deployer.local.front import FrontProxy, switch
from deployer.local.front_container import port_free

LIMIT = 4 * 1024 * 1024


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the size of the body it read, streamed in chunks."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = orjson.dumps({"size": size, "path": scope["path"]})
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="auto")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture
def upstream() -> Iterator[str]:
    with serving(upstream_app) as url:
        yield url


def test_a_restarted_front_reads_its_upstream_back(upstream: str, tmp_path: Path) -> None:
    switch(upstream, tmp_path, timeout=0)
    for _restart in range(2):  # the same state folder, a new process each time
        with serving(FrontProxy(tmp_path, max_body=LIMIT)) as front:
            health = httpx.get(front + "/-/front/health").json()
            assert health == {"upstream": upstream}
            answer = httpx.post(front + "/invocations", content=b"abc")
            assert answer.json() == {"size": 3, "path": "/invocations"}


def test_bodies_over_the_limit_are_refused_and_under_it_stream_through(
    upstream: str, tmp_path: Path
) -> None:
    switch(upstream, tmp_path, timeout=0)
    with serving(FrontProxy(tmp_path, max_body=LIMIT)) as front:
        declared = httpx.post(front + "/invocations", content=b"x" * (LIMIT + 1))
        assert declared.status_code == 413
        assert declared.json() == {"error": f"the request body is larger than {LIMIT} bytes"}

        def chunks(count: int) -> Iterator[bytes]:
            for _ in range(count):
                yield b"y" * 1024 * 1024

        try:  # chunked, no content-length: refused once the streamed bytes pass the limit
            streamed = httpx.post(front + "/invocations", content=chunks(64), timeout=30)
            assert streamed.status_code == 413
        except httpx.WriteError:
            pass  # it answered and closed while the client still wrote
        whole = httpx.post(front + "/invocations", content=chunks(3), timeout=30)
        assert whole.json()["size"] == 3 * 1024 * 1024


def test_a_dead_upstream_is_a_json_error_naming_no_address(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with serving(FrontProxy(tmp_path, max_body=LIMIT)) as front:
        nothing = httpx.post(front + "/invocations", content=b"{}")
        assert nothing.status_code == 503
        assert nothing.headers["content-type"] == "application/json"
        switch(dead, tmp_path)
        answer = httpx.post(front + "/invocations", content=b"{}")
    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/json"
    assert "error" in answer.json()
    assert b"127.0.0.1" not in answer.content and b"http" not in answer.content


def test_answers_carry_one_date_header_and_name_the_backend(upstream: str, tmp_path: Path) -> None:
    switch(upstream, tmp_path, timeout=0)
    with serving(FrontProxy(tmp_path, max_body=LIMIT)) as front:
        answer = httpx.get(front + "/ping")
    assert len(answer.headers.get_list("date")) == 1
    assert answer.headers["x-deployer-backend"] == "127.0.0.1"


def test_a_port_left_in_time_wait_is_free_for_a_new_front() -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its socket on PORT enters TIME-WAIT
    client.recv(1)
    client.close()
    listener.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # a bind without SO_REUSEADDR sees the TIME-WAIT
    assert port_free(port)  # Docker's bind does not
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        assert not port_free(port)  # a real listener still counts
    finally:
        holder.close()


@contextmanager
def front_process(upstream: str, state: Path, *flags: str) -> Iterator[str]:
    """``python -m deployer.local.front serve`` as the front image runs it; its URL."""
    port = free_port()
    command = [sys.executable, "-m", "deployer.local.front", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--upstream", upstream, *flags]
    env = {**os.environ, "DEPLOYER_FRONT_STATE": str(state)}
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a hang guard, not an assertion
        while True:
            assert process.poll() is None, "the front exited"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/-/front/health").status_code == 200:
                    break
            assert time.monotonic() < deadline, "the front did not start"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def raw_answer(port: int, data: bytes, *, keep_sending: bool = False) -> bytes:
    """Send ``data`` (then, with ``keep_sending``, more header bytes until the server stops
    reading) and return what the server answered before it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        if keep_sending:
            try:
                for _ in range(10_000):
                    sock.sendall(b"a" * 1024)
            except OSError:
                pass  # the server closed the connection: what it said is buffered
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


def test_the_front_bounds_headers_and_their_read_time(upstream: str, tmp_path: Path) -> None:
    flags = ("--max-header-bytes", "2048", "--max-headers", "10", "--header-timeout", "1")
    with front_process(upstream, tmp_path, *flags) as front:
        port = int(front.rsplit(":", 1)[1])
        endless = raw_answer(port, b"GET / HTTP/1.1\r\nhost: x\r\nx-long: ", keep_sending=True)
        assert endless.startswith(b"HTTP/1.1 431"), endless[:200]
        assert b"max_header_bytes" in endless
        many = b"".join(b"x-h%d: v\r\n" % i for i in range(20))
        counted = raw_answer(port, b"GET / HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n")
        assert counted.startswith(b"HTTP/1.1 431") and b"max_headers" in counted
        slow = raw_answer(port, b"GET / HTTP/1.1\r\nhost: x\r\n")  # never ends its headers
        assert slow.startswith(b"HTTP/1.1 408"), slow[:200]
        assert httpx.post(front + "/invocations", content=b"abc").json()["size"] == 3


def test_the_front_caps_connections_and_still_answers_health(upstream: str, tmp_path: Path) -> None:
    flags = ("--max-connections", "4", "--header-timeout", "600")  # held ones stay held
    with front_process(upstream, tmp_path, *flags) as front:
        port = int(front.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            assert httpx.get(front + "/-/front/health").status_code == 200
            refused = httpx.post(front + "/invocations", content=b"abc")
            assert refused.status_code == 503
            assert "max_connections" in refused.json()["error"]
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 60  # the front sees the closes: a hang guard only
        while (answer := httpx.post(front + "/invocations", content=b"abc")).status_code == 503:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert answer.json()["size"] == 3


def named_app(name: str) -> Any:
    """An upstream answering its own name."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps({"name": name})})

    return app


def test_a_canary_takes_its_share_and_survives_a_restart(tmp_path: Path) -> None:
    with serving(named_app("old")) as old, serving(named_app("new")) as new:
        switch(old, tmp_path, timeout=0, canary=new, percent=50)
        for _restart in range(2):  # the state file holds both upstreams and the share
            with serving(FrontProxy(tmp_path, max_body=LIMIT)) as front:
                health = httpx.get(front + "/-/front/health").json()
                assert health == {"upstream": old, "canary": {"upstream": new, "percent": 50}}
                names = [httpx.post(front + "/invocations").json()["name"] for _ in range(200)]
                assert {"old", "new"} == set(names)  # 1 in 2**199 to fail by chance
        with serving(FrontProxy(tmp_path, max_body=LIMIT)) as front:
            for percent, expected in ((0, {"old"}), (100, {"new"})):
                assert switch(old, tmp_path, canary=new, percent=percent)
                names = [httpx.post(front + "/invocations").json()["name"] for _ in range(20)]
                assert set(names) == expected
            assert switch(new, tmp_path)  # promoted: the canary line goes
            assert httpx.get(front + "/-/front/health").json() == {"upstream": new}


def test_the_inventory_reads_both_upstreams_of_a_canary(tmp_path: Path) -> None:
    from deployer.local.inventory import read_front, read_upstream

    switch("http://p-t-v1:8080", tmp_path, timeout=0, canary="http://p-t-v2:8080", percent=25)
    with serving(FrontProxy(tmp_path, max_body=LIMIT)) as front:
        assert read_front(front) == (True, "p-t-v1", ("p-t-v2", 25))
        assert read_upstream(front) == (True, "p-t-v1")  # the old version still serves
        assert switch("http://p-t-v2:8080", tmp_path)
        assert read_front(front) == (True, "p-t-v2", None)


def test_the_switch_command_refuses_a_share_out_of_range(tmp_path: Path) -> None:
    from deployer.local.front import main

    assert main(["switch", "http://a:8080", "--canary", "http://b:8080", "--percent", "101"]) == 2
