"""The local target's front: one published port, one switchable upstream.

It runs in its own small image (deployer/local/front_image.py). The local provider starts
a new model container, waits for health, then switches the front to it (``python -m
deployer.local.front switch URL`` through ``docker exec``)
and only then stops the old container, so clients never see a gap. The switch is a
file in the state folder (a tmpfs): the proxy polls it and acknowledges by writing
``upstream.active``. A request that finds its upstream connection closed is retried
once on the current upstream, which covers the moment of a switch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

STATE_DIR = Path(os.environ.get("DEPLOYER_FRONT_STATE", "/tmp"))
HEALTH_PATH = "/-/front/health"
BACKEND_HEADER = b"x-deployer-backend"
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
    }
)  # fmt: skip
_RETRYABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def upstream_file(state: Path) -> Path:
    return state / "upstream"


def active_file(state: Path) -> Path:
    return state / "upstream.active"


class FrontProxy:
    """ASGI app forwarding every request, body and headers unchanged, to the upstream."""

    def __init__(self, state: Path, upstream: str | None = None) -> None:
        self.state = state
        self.upstream = upstream
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
                self.upstream = source.read_text().strip() or None
                active_file(self.state).write_text(self.upstream or "")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            self._reload()

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == HEALTH_PATH:
            await _respond(send, 200, orjson.dumps({"upstream": self.upstream}), [])
            return
        body = await _read_body(receive)
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [
            (k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in _HOP_BY_HOP
        ]
        error = "no upstream is configured yet"
        for _attempt in range(2):
            upstream = self.upstream
            if upstream is None or self._client is None:
                break
            try:
                response = await self._client.request(
                    scope["method"], upstream + target, headers=headers, content=body
                )
            except _RETRYABLE as exc:
                error = f"upstream {upstream} failed: {type(exc).__name__}: {exc}"
                continue
            out = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.items()
                if k.lower() not in _HOP_BY_HOP
            ]
            out.append((BACKEND_HEADER, upstream.encode()))
            await _respond(send, response.status_code, response.content, out)
            return
        await _respond(send, 502, orjson.dumps({"error": error}), [])


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    if not any(k == b"content-type" for k, _ in headers):
        headers = [*headers, (b"content-type", b"application/json")]
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def switch(url: str, state: Path, timeout: float = 10.0) -> bool:
    """Point the running proxy at ``url`` and wait until it has taken it."""
    temporary = state / "upstream.tmp"
    temporary.write_text(url)
    os.replace(temporary, upstream_file(state))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if active_file(state).read_text() == url:
                return True
        time.sleep(0.02)
    return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployer.local.front")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--upstream", default=None)
    move = commands.add_parser("switch", help="point the running proxy at a new upstream")
    move.add_argument("url")
    args = parser.parse_args(argv)
    if args.command == "switch":
        if switch(args.url, STATE_DIR):
            return 0
        print(f"the proxy did not take upstream {args.url} in time", file=sys.stderr)
        return 1
    import uvicorn

    if args.upstream:
        switch(args.upstream, STATE_DIR, timeout=0)
    app = FrontProxy(STATE_DIR, args.upstream)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, server_header=False, timeout_graceful_shutdown=20)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
