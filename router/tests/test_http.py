"""The router's HTTP/1.1 handling on the wire: pipelining, chunked bodies, 100-continue,
limits, malformed requests, HEAD, hop-by-hop headers, and backends that close idle
keep-alive connections. Raw sockets on 127.0.0.1 against an in-process router."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from router_support import FakeBackend, RouterThread, manifest, wait_until


@pytest.fixture
def echo() -> Iterator[tuple[RouterThread, FakeBackend]]:
    fake = FakeBackend("echo")
    data = manifest(backends=[{"name": "echo", "url": fake.url, "health": {"source": "none"}}],
                    max_body_mb=1)  # fmt: skip
    try:
        with RouterThread(data) as router:
            yield router, fake
    finally:
        fake.close()


def exchange(
    port: int, data: bytes, answers: int = 1, timeout: float = 10, head: bool = False
) -> list[bytes]:
    """Send raw bytes; read ``answers`` complete responses (content-length framed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        buffer, out = b"", []
        while len(out) < answers:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end >= 0:
                text = buffer[:head_end].decode("latin-1")
                length = next((int(line.split(":", 1)[1]) for line in text.split("\r\n")
                               if line.lower().startswith("content-length:")), 0)  # fmt: skip
                if text.startswith("HTTP/1.1 100") or head:
                    length = 0
                if len(buffer) >= head_end + 4 + length:
                    out.append(buffer[: head_end + 4 + length])
                    buffer = buffer[head_end + 4 + length :]
                    continue
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        return out


def test_pipelined_requests_answer_in_order(echo: Any) -> None:
    router, fake = echo
    requests = b"".join(
        f"POST /r{i} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{i:02d}".encode()
        for i in range(5)
    )
    answers = exchange(router.port, requests, answers=5)
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 5
    assert [a.rsplit(b'"path": "', 1)[1][:3] for a in answers] == [b"/r0", b"/r1", b"/r2",
                                                                    b"/r3", b"/r4"]  # fmt: skip
    assert [s["body"] for s in fake.seen[-5:]] == [b"00", b"01", b"02", b"03", b"04"]


def test_chunked_body_and_100_continue(echo: Any) -> None:
    router, fake = echo
    request = (b"POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
               b"expect: 100-continue\r\nconnection: keep-alive, x-private\r\n"
               b"x-private: hop\r\nx-keep: end\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")  # fmt: skip
    answers = exchange(router.port, request, answers=2)
    assert answers[0].startswith(b"HTTP/1.1 100 Continue")
    assert answers[1].startswith(b"HTTP/1.1 200 OK")
    seen = fake.seen[-1]
    assert seen["body"] == b"hello world"
    assert seen["headers"]["content-length"] == "11"
    assert "transfer-encoding" not in seen["headers"] and "expect" not in seen["headers"]
    assert "x-private" not in seen["headers"]  # named in Connection: hop-by-hop
    assert seen["headers"]["x-keep"] == "end"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_limits_and_malformed_requests(echo: Any) -> None:
    router, _ = echo
    big = exchange(router.port, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2000000\r\n\r\n")
    assert big[0].startswith(b"HTTP/1.1 413")
    bad = exchange(router.port, b"GARBAGE\r\n\r\n")
    assert bad[0].startswith(b"HTTP/1.1 400")
    huge = exchange(router.port, b"GET / HTTP/1.1\r\nx-big: " + b"a" * 70000 + b"\r\n\r\n")
    assert huge[0].startswith(b"HTTP/1.1 431")
    upgrade = exchange(router.port, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\n"
                                    b"upgrade: websocket\r\n\r\n")  # fmt: skip
    assert upgrade[0].startswith(b"HTTP/1.1 501")


def test_http10_and_head(echo: Any) -> None:
    router, _ = echo
    answer = exchange(router.port, b"GET /old HTTP/1.0\r\n\r\n")[0]
    assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer.lower()
    head = exchange(router.port, b"HEAD /h HTTP/1.1\r\nhost: x\r\n\r\n", head=True)
    assert head[0].startswith(b"HTTP/1.1 200") and head[0].endswith(b"\r\n\r\n")
    assert b"content-length: 42\r\n" in head[0]


class ClosingBackend:
    """Answers each request, then closes the connection without saying so (like a server
    whose keep-alive timeout just expired): the router must not fail the next request.
    ``closed`` counts the connections it has closed (a context manager: stops on exit)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.requests = 0
        self.closed = 0
        self._stop: asyncio.Event | None = None
        ready = threading.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(x.split(b":")[1]) for x in head.split(b"\r\n")
                           if x.lower().startswith(b"content-length")), 0)  # fmt: skip
            await reader.readexactly(length)
            self.requests += 1
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()
            self.closed += 1

        async def main() -> None:
            self._stop = asyncio.Event()
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await self._stop.wait()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       daemon=True)  # fmt: skip
        self.thread.start()
        assert ready.wait(30), "the closing backend did not start"

    def __enter__(self) -> ClosingBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)
        self.loop.close()


def test_backend_closing_idle_connections_is_not_a_failure() -> None:
    import httpx

    with ClosingBackend() as backend:
        data = manifest(backends=[{"name": "c", "url": f"http://127.0.0.1:{backend.port}",
                                   "health": {"source": "none"}}])  # fmt: skip
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            for sent in range(1, 6):
                answer = client.post(router.url + "/x", content=b"{}")
                assert answer.status_code == 200 and answer.content == b"ok"
                assert "x-deployer-retries" not in answer.headers
                # the backend closed the pooled connection before the next request
                closed = lambda n=sent: backend.closed >= n  # noqa: E731
                wait_until(closed, message="the backend closed the connection")
        assert backend.requests == 5


def test_server_keeps_answers_in_order_whether_a_handler_answers_now_later_or_fails() -> None:
    """The callback contract of deployer_router.server: a handler that raises gets a 500,
    an answer given later still goes out in order, a second answer to one request is
    ignored, and the connection serves on."""
    from deployer_router.server import HttpServer, Request, Respond, Response

    class Handler:
        def start(self, request: Request, respond: Respond) -> None:
            if request.target == b"/bug":
                raise RuntimeError("a handler bug")
            if request.target == b"/twice":
                respond(request, Response(200, [], b"first"))
                respond(request, Response(200, [], b"second"))
                return
            later = Response(200, [], request.target)
            asyncio.get_running_loop().call_later(0.05, respond, request, later)

    loop = asyncio.new_event_loop()
    server = HttpServer(Handler(), max_body=1024)
    errors: list[str] = []
    server.log_error = lambda: errors.append("logged")
    started = threading.Event()
    port: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        port.append(loop.run_until_complete(server.start("127.0.0.1", 0)))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        requests = b"".join(
            f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode()
            for path in ("/later-1", "/bug", "/twice", "/later-2")
        )
        answers = exchange(port[0], requests, answers=4)
        assert [a.split(b"\r\n", 1)[0] for a in answers] == [
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 500 Internal Server Error",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 200 OK",
        ]
        assert [a.split(b"\r\n\r\n", 1)[1] for a in answers] == [
            b"/later-1",
            b"internal router error\n",
            b"first",
            b"/later-2",
        ]
        assert errors == ["logged"]
    finally:
        asyncio.run_coroutine_threadsafe(server.shutdown(1), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
