"""The local target's front: one published port, one switchable upstream.

It runs in its own small image (deployer/local/front_image.py). The local provider starts
a new model container, waits for health, then switches the front to it (``python -m
deployer.local.front switch URL`` through ``docker exec``) and only then stops the old
container, so clients never see a gap.

The upstream is a file in the state folder (``DEPLOYER_FRONT_STATE``), which the provider
mounts from a named Docker volume: when the front is killed and Docker restarts it, it
reads its upstream back and serves again with no command run. The proxy polls the file
and acknowledges a switch by writing ``upstream.active``. During a canary the file holds
a second line, ``URL PERCENT``: that share of the requests goes to the canary's upstream,
the rest to the first (``python -m deployer.local.front switch OLD --canary NEW
--percent N``); the health route names both.

Bounds: a request body larger than ``--max-body`` bytes is refused with 413 (at once when
its Content-Length says so, else as soon as the streamed bytes pass it); bodies stream
both ways, so memory stays flat whatever the size. A request that finds its upstream
connection closed before any of its body was streamed is retried once on the current
upstream (the moment of a switch). When the model container is down the answer is a
JSON 502 (503 with no upstream, 504 on a timeout) that names no internal address.
Every connection is bounded as the model server's are (deployer/serving/bounded_http.py):
request line and headers (``--max-header-bytes``, ``--max-headers``: 431), header and
body read timeouts (``--header-timeout``, ``--body-timeout``: 408) and connections
(``--max-connections``: 503 beyond, the health route still answering).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson

STATE_DIR = Path(os.environ.get("DEPLOYER_FRONT_STATE", "/tmp"))
HEALTH_PATH = "/-/front/health"
BACKEND_HEADER = b"x-deployer-backend"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
REPLAY_BYTES = 1024 * 1024  # bodies up to this size are kept whole, so a retry can resend them
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "trailers", "transfer-encoding", "upgrade", "host",
    }
)  # fmt: skip
_OWN_HEADERS = frozenset({"date", "content-length"})  # uvicorn writes its own date
_RETRYABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def front_bounds(args: argparse.Namespace) -> Any:
    """The per-connection bounds of the front, from its command line."""
    import resource

    from deployer.serving.bounded_http import Bounds
    from deployer.serving.connections import connection_cap

    cap = connection_cap(args.max_connections, int(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    return Bounds(
        max_header_bytes=args.max_header_bytes,
        max_headers=args.max_headers,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        max_body_bytes=args.max_body,
        max_connections=cap.limit,
        health_overflow=cap.health_overflow,
        health_paths=frozenset({HEALTH_PATH}),
        label="the front's --",
    )


def bounded_protocol(bounds: Any) -> type:
    """uvicorn's httptools protocol with ``bounds`` on every connection."""
    from deployer.serving.bounded_http import BoundedProtocol

    class FrontProtocol(BoundedProtocol):
        def load_bounds(self) -> Any:
            return bounds

    return FrontProtocol


class BodyTooLarge(Exception):
    """The client's body passed the limit while it streamed."""


def upstream_file(state: Path) -> Path:
    return state / "upstream"


def active_file(state: Path) -> Path:
    return state / "upstream.active"


def parse_state(text: str) -> tuple[str | None, tuple[str, int] | None]:
    """The upstream file's text: (the main upstream, (the canary's, its percent) or None)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines:
        return None, None
    main = lines[0][0]
    canary = None
    if len(lines) > 1 and len(lines[1]) == 2 and lines[1][1].isdigit():
        canary = (lines[1][0], max(0, min(100, int(lines[1][1]))))
    return main, canary


def state_text(url: str, canary: str | None = None, percent: int = 0) -> str:
    """What ``parse_state`` reads back."""
    return url if canary is None else f"{url}\n{canary} {percent}"


def backend_name(upstream: str) -> str:
    """``http://NAME:8080`` -> ``NAME``: the model container's name, not its address."""
    return upstream.split("://", 1)[-1].rsplit(":", 1)[0]


class _Body:
    """The client's body: a replayable prefix, then (for big bodies) the rest, streamed."""

    def __init__(self, receive: Any, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.prefix = b""
        self.complete = False
        self.streamed = False  # part of the rest was sent: the request cannot be retried
        self.size = 0

    async def read_prefix(self) -> None:
        chunks: list[bytes] = []
        while self.size <= REPLAY_BYTES:
            message = await self.receive()
            chunk = message.get("body", b"")
            self._count(chunk)
            chunks.append(chunk)
            if not message.get("more_body"):
                self.complete = True
                break
        self.prefix = b"".join(chunks)

    def _count(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise BodyTooLarge

    def content(self) -> bytes | AsyncIterator[bytes]:
        return self.prefix if self.complete else self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        yield self.prefix
        while True:
            message = await self.receive()
            chunk = message.get("body", b"")
            self.streamed = True
            self._count(chunk)
            if chunk:
                yield chunk
            if not message.get("more_body"):
                return


class FrontProxy:
    """ASGI app forwarding every request, body and headers unchanged, to the upstream."""

    def __init__(
        self, state: Path, upstream: str | None = None, max_body: int = DEFAULT_MAX_BODY
    ) -> None:
        self.state = state
        self.upstream = upstream
        self.canary: tuple[str, int] | None = None  # (upstream, percent of the requests)
        self.max_body = max_body
        self._mtime = 0.0
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        watcher: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(
                    timeout=httpx.Timeout(65.0, connect=2.0),
                    limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                )
                self._reload()
                watcher = asyncio.create_task(self._watch())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if watcher:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
                if self._client:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _reload(self) -> None:
        source = upstream_file(self.state)
        with contextlib.suppress(FileNotFoundError):
            mtime = source.stat().st_mtime
            if mtime != self._mtime:
                self._mtime = mtime
                text = source.read_text().strip()
                self.upstream, self.canary = parse_state(text)
                active_file(self.state).write_text(text)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            self._reload()

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == HEALTH_PATH:
            document: dict[str, Any] = {"upstream": self.upstream}
            if self.canary is not None:
                document["canary"] = {"upstream": self.canary[0], "percent": self.canary[1]}
            await _respond(send, 200, document)
            return
        declared = _content_length(scope["headers"])
        if declared is not None and declared > self.max_body:
            await _too_large(send, self.max_body)
            return
        body = _Body(receive, self.max_body)
        try:
            await body.read_prefix()
            await self._forward(scope, body, send)
        except BodyTooLarge:
            await _too_large(send, self.max_body)

    def _pick(self) -> str | None:
        """The upstream for one request: the canary's for its share, else the main one."""
        canary = self.canary
        if canary is not None and self.upstream is not None and random.uniform(0, 100) < canary[1]:
            return canary[0]
        return self.upstream

    async def _forward(self, scope: dict[str, Any], body: _Body, send: Any) -> None:
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [
            (k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in _HOP_BY_HOP
        ]
        status, error = 503, "no model version is being served yet"
        for _attempt in range(2):
            upstream = self._pick()
            if upstream is None or self._client is None:
                break
            request = self._client.build_request(
                scope["method"], upstream + target, headers=headers, content=body.content()
            )
            try:
                response = await self._client.send(request, stream=True)
            except BodyTooLarge:
                raise
            except httpx.TimeoutException:
                status, error = 504, "the model did not answer in time"
                break
            except _RETRYABLE:
                status, error = 502, "the model is not reachable (it may be restarting)"
                if body.streamed:
                    break
                continue
            except httpx.HTTPError:
                status, error = 502, "the model's answer could not be read"
                break
            try:
                await _relay(response, upstream, send)
            finally:
                await response.aclose()
            return
        await _respond(send, status, {"error": error})


async def _relay(response: httpx.Response, upstream: str, send: Any) -> None:
    """Stream the upstream's answer (raw bytes: its content-encoding stays as it is)."""
    out = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers.multi_items()
        if k.lower() not in _HOP_BY_HOP and k.lower() not in _OWN_HEADERS
    ]
    if "content-length" in response.headers:
        out.append((b"content-length", response.headers["content-length"].encode("latin-1")))
    out.append((BACKEND_HEADER, backend_name(upstream).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": out})
    try:
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.HTTPError:
        pass  # the model died mid-answer: end what was sent; the client sees a short body
    await send({"type": "http.response.body", "body": b""})


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key.lower() == b"content-length":
            with contextlib.suppress(ValueError):
                return int(value)
    return None


async def _too_large(send: Any, limit: int) -> None:
    await _respond(send, 413, {"error": f"the request body is larger than {limit} bytes"},
                   close=True)  # fmt: skip


async def _respond(send: Any, status: int, document: dict[str, Any], close: bool = False) -> None:
    body = orjson.dumps(document)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of the client's body is not read
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def switch(
    url: str, state: Path, timeout: float = 10.0, canary: str | None = None, percent: int = 0
) -> bool:
    """Point the running proxy at ``url`` (and ``percent`` of the requests at ``canary``)
    and wait until it has taken it."""
    text = state_text(url, canary, percent)
    temporary = state / "upstream.tmp"
    temporary.write_text(text)
    os.replace(temporary, upstream_file(state))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if active_file(state).read_text() == text:
                return True
        time.sleep(0.02)
    return False


def health(port: int) -> int:
    """The image's HEALTHCHECK: 0 when the proxy answers its health route."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=3) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployer.local.front")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--upstream", default=None)
    serve.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="bytes; else 413")
    serve.add_argument("--max-header-bytes", type=int, default=65536, help="else 431")
    serve.add_argument("--max-headers", type=int, default=100, help="else 431")
    serve.add_argument("--header-timeout", type=float, default=30.0, help="seconds; else 408")
    serve.add_argument("--body-timeout", type=float, default=60.0, help="seconds; else 408")
    serve.add_argument("--max-connections", type=int, default=4096, help="else 503")
    move = commands.add_parser("switch", help="point the running proxy at a new upstream")
    move.add_argument("url")
    move.add_argument("--canary", default=None, help="a second upstream, for a share")
    move.add_argument("--percent", type=int, default=0, help="the canary's share (0-100)")
    check = commands.add_parser("health", help="exit 0 when the proxy answers")
    check.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    if args.command == "health":
        return health(args.port)
    if args.command == "switch":
        if not 0 <= args.percent <= 100:
            print(f"--percent {args.percent}: expected 0 to 100", file=sys.stderr)
            return 2
        if switch(args.url, STATE_DIR, canary=args.canary, percent=args.percent):
            return 0
        print(f"the proxy did not take upstream {args.url} in time", file=sys.stderr)
        return 1
    import uvicorn

    if args.upstream:
        switch(args.upstream, STATE_DIR, timeout=0)
    app = FrontProxy(STATE_DIR, args.upstream, args.max_body)
    protocol = bounded_protocol(front_bounds(args))
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http=protocol,
                access_log=False, server_header=False, timeout_graceful_shutdown=20)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
