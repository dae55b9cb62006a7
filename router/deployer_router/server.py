"""A small HTTP/1.1 server on asyncio (uvloop) and httptools, for the router.

Why not uvicorn: its ASGI layer (scope dicts, receive/send messages) roughly doubled the
router's CPU per request in our measurements (benchmarks/RESULTS.md); a proxy needs the
request as bytes and nothing more. What it handles: keep-alive and pipelining (answers in
order), Content-Length and chunked request bodies, ``Expect: 100-continue``, HTTP/1.0,
413 for bodies over the limit, 431 for oversized headers, 400 for unparsable requests,
an idle timeout, and a graceful shutdown that stops accepting, lets requests in flight
finish, and closes idle connections.

Limits (router.yaml ``limits``, deployer.router.manifest.Limits) apply while reading, so
memory stays flat whatever a client sends: 414 once the URL passes ``url_bytes``, 431 once
the head passes ``header_bytes`` (counted as bytes arrive, an unfinished header included)
or ``header_count``, 413 for a body over ``body_mb``, 408 when a head or a body takes
longer than ``header_timeout`` / ``body_timeout``, and 503 for a connection beyond
``connections``. Each answers and closes the connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol

import httptools

from deployer.router.manifest import Limits

MAX_PIPELINE = 16
REQUEST_LINE_SLACK = 1024  # method, version and spaces around the URL
LINGER = 1.0  # seconds a connection answered 4xx/503 is kept half-closed for its answer
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class Request:
    """One parsed request. Header names are lower-case; ``target`` is the raw URL."""

    __slots__ = ("body", "client", "headers", "keep_alive", "method", "target")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        keep_alive: bool,
        client: str,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.client = client

    @property
    def path(self) -> bytes:
        return self.target.split(b"?", 1)[0]


class Response:
    """What a handler returns: status, headers (without content-length), body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


Respond = Callable[[Request, Response], None]


class Handler(Protocol):
    """Answers requests by callback: ``start`` must lead to one ``respond(request,
    response)`` call, now or later (another for the same request is ignored). No task per
    request: the router's hot path is callbacks end to end."""

    def start(self, request: Request, respond: Respond) -> None: ...


_INTERNAL_ERROR = Response(500, [(b"content-type", b"text/plain")], b"internal router error\n")


_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))
        if 100 <= status <= 999:
            _STATUS_LINES[status] = line
    return line


def serialize(response: Response, keep_alive: bool, head: bool) -> bytes:
    parts = [status_line(response.status)]
    for name, value in response.headers:
        parts += (name, b": ", value, b"\r\n")
    if not head or not any(n == b"content-length" for n, _ in response.headers):
        parts += (b"content-length: ", str(len(response.body)).encode(), b"\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head:
        parts.append(response.body)
    return b"".join(parts)


def plain(status: int, message: str) -> bytes:
    body = message.encode() + b"\n"
    return serialize(Response(status, [(b"content-type", b"text/plain")], body), False, False)


def _answer_and_linger(transport: Any, data: bytes) -> None:
    """Write a final answer and half-close; what the client still sends is read and
    dropped for ``LINGER`` seconds, so it can read the answer (closing a socket with
    unread input would reset the connection and lose it)."""
    if transport.is_closing():
        return
    transport.write(data)
    try:
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
    except (OSError, RuntimeError):
        transport.close()
        return
    asyncio.get_running_loop().call_later(LINGER, transport.close)


class _Protocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.client = ""
        self.queue: collections.deque[Request] = collections.deque()
        self.current: Request | None = None  # the request being answered
        self.paused = False
        self.closing = False
        self.last_active = time.monotonic()
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._header_size = 0
        self._header_count = 0
        self._reject: bytes | None = None
        self._in_head = True  # reading a request head (or waiting for one)
        self._head_bytes = 0  # bytes received while reading this head
        self._head_started = 0.0  # when this head's first byte was parsed (0: none yet)
        self._body_started = 0.0  # when this request's body began (0: not reading one)

    # -- connection --------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        server = self.server
        if len(server.connections) >= server.max_connections:
            self._refuse()
            return
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else ""
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.queue.clear()  # nobody to answer: the request in flight finishes on its own
        self.server.connections.discard(self)

    def _refuse(self) -> None:
        """Over the connection limit: answer 503, half-close, drop the rest."""
        server = self.server
        server.refused += 1
        self.closing = True
        _answer_and_linger(
            self.transport,
            serialize(
                Response(
                    503,
                    [(b"content-type", b"text/plain"), (b"retry-after", b"1")],
                    b"the router is at its limit of %d connections; retry later\n"
                    % server.max_connections,
                ),
                False,
                False,
            ),
        )

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # answered already (refused, rejected): nothing more is read
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._abort(501, "protocol upgrades are not supported")
            return
        except httptools.HttpParserError as exc:
            if self._reject is not None:
                self._abort_raw(self._reject)
            else:
                self._abort(400, f"bad request: {exc}")
            return
        if self._in_head and self._head_bytes > self.server.head_limit:
            # an unfinished header (httptools keeps it whole until it ends) or URL
            self._abort(431, "request headers too large")

    def _abort(self, status: int, message: str) -> None:
        self._abort_raw(plain(status, message))

    def _abort_raw(self, data: bytes) -> None:
        # answer after the requests already queued, then close; read nothing more
        self._in_head = False
        self._body_started = 0.0
        if self.current is None and not self.queue:
            self._write_and_close(data)
        else:
            self.closing = True
            self.queue.append(Request(b"", b"", [], data, False, "!"))
            self._kick()

    def _write_and_close(self, data: bytes) -> None:
        self.closing = True
        _answer_and_linger(self.transport, data)

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = 0
        self._header_size = 0
        self._header_count = 0
        self._head_started = time.monotonic()

    def on_url(self, url: bytes) -> None:
        url = self._url + url if self._url else url
        if len(url) > self.server.url_bytes:
            self._reject = plain(414, f"URL over {self.server.url_bytes} bytes")
            raise httptools.HttpParserError("URL too long")
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        server = self.server
        self._header_size += len(name) + len(value) + 4
        self._header_count += 1
        if self._header_size > server.header_bytes:
            self._reject = plain(431, f"request headers over {server.header_bytes} bytes")
            raise httptools.HttpParserError("headers too large")
        if self._header_count > server.header_count:
            self._reject = plain(431, f"more than {server.header_count} request headers")
            raise httptools.HttpParserError("too many headers")
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._head_started = 0.0
        self._body_started = time.monotonic()
        limit = self.server.max_body
        for name, value in self._headers:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                self._reject = plain(413, f"request body over {limit} bytes")
                raise httptools.HttpParserError("body too large")
            if name == b"expect" and value.lower() == b"100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.server.max_body:
            self._reject = plain(413, f"request body over {self.server.max_body} bytes")
            raise httptools.HttpParserError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._body_started = 0.0
        if self.parser.should_upgrade():
            return  # answered 501 when the parser stops at the upgrade
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(
            self.parser.get_method(),
            self._url,
            self._headers,
            body,
            self.parser.should_keep_alive(),
            self.client,
        )
        self.queue.append(request)
        server = self.server
        server.requests += 1
        if server.on_request is not None:
            server.on_request()
        if len(self.queue) > MAX_PIPELINE and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._kick()

    # -- answering ---------------------------------------------------------------------

    def _kick(self) -> None:
        if self.current is None and self.queue:
            self._next()

    def _next(self) -> None:
        """Start the next queued request (one at a time: answers go out in order)."""
        request = self.queue.popleft()
        if request.client == "!":  # a rejection queued behind earlier requests
            self._write_and_close(request.body)
            return
        self.current = request
        self.server.in_flight += 1
        try:
            self.server.handler.start(request, self._respond)
        except Exception:  # a handler bug must not hang the client
            self.server.log_error()
            self._respond(request, _INTERNAL_ERROR)

    def _respond(self, request: Request, response: Response) -> None:
        """The handler's answer to ``request``: write it, start the next."""
        if request is not self.current:  # answered already (a handler bug): ignore
            return
        self.current = None
        self.server.in_flight -= 1
        keep_alive = request.keep_alive and not self.server.draining
        transport = self.transport
        if not transport.is_closing():
            transport.write(serialize(response, keep_alive, request.method == b"HEAD"))
        self.last_active = time.monotonic()
        if not keep_alive:
            transport.close()
            self.closing = True
            self.queue.clear()
            return
        if self.paused and len(self.queue) <= MAX_PIPELINE // 2:
            self.paused = False
            transport.resume_reading()
        if self.queue:
            self._next()

    @property
    def idle(self) -> bool:
        return self.current is None and not self.queue

    def overdue(self, now: float) -> str | None:
        """Why this connection is too slow sending its request (None: it is not)."""
        if self.closing or self.paused:
            return None
        server = self.server
        if (
            self._in_head
            and self._head_started
            and now - self._head_started > server.header_timeout
        ):
            return f"request head not received within {server.header_timeout:g}s"
        if self._body_started and now - self._body_started > server.body_timeout:
            return f"request body not received within {server.body_timeout:g}s"
        return None

    def time_out(self, reason: str) -> None:
        self.server.timed_out += 1
        self._abort(408, reason)

    def close_if_idle(self) -> None:
        if self.idle and not self.closing:
            self.closing = True
            self.transport.close()


class HttpServer:
    """Serves ``handler`` on one listening socket, within ``limits`` (``max_body``, in
    bytes, overrides ``limits.body_mb``)."""

    def __init__(
        self,
        handler: Handler,
        *,
        limits: Limits | None = None,
        max_body: int | None = None,
    ) -> None:
        self.handler = handler
        self.refused = 0  # connections answered 503 at the connection limit
        self.timed_out = 0  # requests answered 408
        self.apply(limits or Limits(), max_body)
        self.connections: set[_Protocol] = set()
        self.draining = False
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.log_error: Callable[[], None] = lambda: None
        self.requests = 0  # requests parsed so far
        self.in_flight = 0  # requests handed to the handler and not yet answered
        self.on_request: Callable[[], None] | None = None  # called as each request arrives

    def apply(self, limits: Limits, max_body: int | None = None) -> None:
        """Take (new) limits; connections already open keep what they have read."""
        self.limits = limits
        self.max_body = limits.body_bytes if max_body is None else max_body
        self.url_bytes = limits.url_bytes
        self.header_bytes = limits.header_bytes
        self.header_count = limits.header_count
        self.head_limit = limits.url_bytes + limits.header_bytes + REQUEST_LINE_SLACK
        self.header_timeout = limits.header_timeout
        self.body_timeout = limits.body_timeout
        self.max_connections = limits.connections
        self.idle_timeout = limits.idle_timeout

    async def start(self, host: str, port: int, sock: socket.socket | None = None) -> int:
        """Listen; returns the port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(
                lambda: _Protocol(self), sock=sock, backlog=4096
            )
        else:
            self._server = await loop.create_server(
                lambda: _Protocol(self), host, port, reuse_address=True, backlog=4096
            )
        self._sweeper = loop.create_task(self._sweep())
        return int(self._server.sockets[0].getsockname()[1])

    async def _sweep(self) -> None:
        """Close idle connections; answer 408 to those too slow sending a request."""
        while True:
            await asyncio.sleep(
                min(1.0, self.idle_timeout / 2, self.header_timeout / 4, self.body_timeout / 4)
            )
            now = time.monotonic()
            cutoff = now - self.idle_timeout
            for conn in list(self.connections):
                reason = conn.overdue(now)
                if reason is not None:
                    conn.time_out(reason)
                elif conn.idle and conn.last_active < cutoff:
                    conn.close_if_idle()

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace`` s), close."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        deadline = time.monotonic() + grace
        while self.connections and time.monotonic() < deadline:
            for conn in list(self.connections):
                conn.close_if_idle()
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()


FD_RESERVE = 256  # files beside connections: backend pools' spares, logs, the manifest


def fd_budget(connections: int) -> int:
    """Open files ``connections`` clients may need: each one, and a backend connection."""
    return 2 * connections + FD_RESERVE


def ensure_fd_budget(connections: int) -> int:
    """Raise this process's open-files limit (soft, up to the hard one) to what
    ``connections`` need; the soft limit after (-1 where there is none to read)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = fd_budget(connections)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return -1 if soft == resource.RLIM_INFINITY else int(soft)
