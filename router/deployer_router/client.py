"""A lean HTTP/1.1 client for backends: one keep-alive connection pool per backend.

General-purpose clients (httpx, aiohttp) cost 4 to 8 times more CPU per proxied request
than this (see benchmarks/RESULTS.md, "Router (issue 6)"): here a request is one
``transport.write`` of pre-built bytes and the response is parsed by httptools (llhttp)
in C. Requests complete by callback (``Pool.send``), with no task or future per
request; ``Pool.request`` is the awaitable form for health checks. It speaks what
backends need: Content-Length and chunked responses, keep-alive,
TLS (the system trust store), and the ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``
variables (CONNECT tunnels for https). Loopback addresses never go through a proxy.

A connection that was idle in the pool and turns out closed before answering is retried
once on a fresh connection (the backend closed it between requests); that is not a
router retry and needs no budget.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import urllib.request
import weakref
from collections.abc import Callable
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

import httptools

from deployer.router.manifest import Limits

LOOPBACK = ("127.", "localhost", "::1", "[::1]")
_CONNECT_HEAD_LIMIT = 64 * 1024
ANSWER_HEAD_BYTES = 256 * 1024  # an answer's status line and headers, over its body limit
DEFAULT_MAX_ANSWER = Limits().response_bytes  # the router passes its limits.response_mb
SWEEP_SECONDS = 0.05  # request timeouts fire within this much of their deadline


class UpstreamError(Exception):
    """A request to a backend that got no usable answer.

    ``kind``: ``connect-failure`` (nothing was sent), ``reset`` (the connection closed
    or broke before a full answer), ``timeout``, ``protocol`` (an unparsable answer) or
    ``oversized`` (an answer over the pool's ``max_answer`` bytes; not read further).
    """

    def __init__(self, kind: str, message: str, *, answered: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.answered = answered  # some bytes of an answer arrived


class Response:
    """An upstream answer: status, headers as received (raw names), whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


Outcome: TypeAlias = "Response | UpstreamError"
Done = Callable[[Outcome], None]


class _Connection(asyncio.Protocol):
    """One connection to a backend, used by one request at a time."""

    __slots__ = (
        "_body",
        "_headers",
        "_tunnel",
        "_tunnel_buffer",
        "answered",
        "body_size",
        "closed",
        "done",
        "head_only",
        "last_used",
        "parser",
        "pool",
        "received",
        "sent_at",
        "status",
        "transport",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: Done | None = None  # the request in flight's completion
        self.sent_at = 0.0
        self.closed = False
        self.head_only = False
        self.answered = False
        self.last_used = 0.0
        self.status = 0
        self.received = 0  # bytes of the answer in progress
        self.body_size = -1  # its body's bytes so far; over the limit: set above it
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._tunnel: asyncio.Future[bytes] | None = None
        self._tunnel_buffer = b""

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel_data(data)
            return
        if self.done is None:  # nothing asked: the backend misbehaves
            self.close()
            return
        self.answered = True
        self.received += len(data)
        limit = self.pool.max_answer
        if self.received > limit + ANSWER_HEAD_BYTES:  # head included: bounded too
            self._oversized(limit)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.done is not None and self.body_size > limit:
                self._oversized(limit)
                return
            self._fail(UpstreamError("protocol", f"unparsable answer: {exc}", answered=True))
            self.close()
            return
        if self.head_only and self.done is None:
            # a HEAD answer ends with its headers: start the next one with a fresh parser
            self.parser = httptools.HttpResponseParser(self)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._tunnel is not None and not self._tunnel.done():
            self._tunnel.set_exception(ConnectionError("the proxy closed the connection"))
        if self.done is None:
            return
        if self.status >= 200 and not any(
            n.lower() in (b"content-length", b"transfer-encoding") for n, _ in self._headers
        ):
            self.on_message_complete()  # an answer delimited by the end of the connection
            return
        detail = f": {exc}" if exc else ""
        self._fail(
            UpstreamError(
                "reset", f"connection closed before a full answer{detail}", answered=self.answered
            )
        )

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        for name, value in self._headers:
            if name.lower() == b"content-length" and value.isdigit():
                if int(value) > self.pool.max_answer and not self.head_only:
                    self.body_size = int(value)
                    raise httptools.HttpParserError("answer too large")
                break
        self.body_size = 0
        if self.head_only and self.status >= 200:
            self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.pool.max_answer:
            raise httptools.HttpParserError("answer too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.done is None:
            return
        if self.status < 200:  # 1xx interim answer: the real one follows
            self._headers = []
            return
        if not self.parser.should_keep_alive():
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self.pool.finished(self, Response(self.status, self._headers, body))

    # -- use ---------------------------------------------------------------------------

    def send(self, data: bytes, head_only: bool, done: Done) -> None:
        self.done = done
        self.head_only = head_only
        self.answered = False
        self.status = 0
        self.received = 0
        self.body_size = -1
        self.transport.write(data)

    def _oversized(self, limit: int) -> None:
        self._fail(
            UpstreamError("oversized", f"answer over the limit of {limit} bytes", answered=True)
        )
        self.close()

    def timed_out(self, seconds: float) -> None:
        self._fail(
            UpstreamError(
                "timeout", f"no answer within {round(seconds, 3):g}s", answered=self.answered
            )
        )
        self.close()

    def _fail(self, error: UpstreamError) -> None:
        if self.done is not None:
            self.close()  # a failed exchange leaves the connection in an unknown state
            self.pool.finished(self, error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- CONNECT through a proxy --------------------------------------------------------

    async def tunnel(self, request: bytes, timeout: float) -> None:
        self._tunnel = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            head = await asyncio.wait_for(self._tunnel, timeout)
        finally:
            self._tunnel = None
        status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b"?"
        if status != b"200":
            raise ConnectionError(f"the proxy refused the tunnel: {head.splitlines()[0]!r}")

    def _tunnel_data(self, data: bytes) -> None:
        assert self._tunnel is not None
        self._tunnel_buffer += data
        end = self._tunnel_buffer.find(b"\r\n\r\n")
        if end >= 0 and not self._tunnel.done():
            self._tunnel.set_result(self._tunnel_buffer[:end])
        elif len(self._tunnel_buffer) > _CONNECT_HEAD_LIMIT and not self._tunnel.done():
            self._tunnel.set_exception(ConnectionError("oversized answer from the proxy"))


class _Deadlines:
    """Request timeouts without a timer per request (a uvloop timer costs about as much
    as the rest of a proxied request): requests in flight are swept every 50 ms."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.busy: dict[_Connection, tuple[float, float]] = {}
        self.task = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            if self.busy:
                now = time.monotonic()
                for conn, (deadline, seconds) in list(self.busy.items()):
                    if deadline <= now:
                        self.busy.pop(conn, None)
                        conn.timed_out(seconds)


_deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
    weakref.WeakKeyDictionary()
)


def _deadlines_here() -> _Deadlines:
    loop = asyncio.get_running_loop()
    found = _deadlines.get(loop)
    if found is None or found.task.done():
        found = _deadlines[loop] = _Deadlines(loop)
    return found


def stop_timeouts() -> asyncio.Task[None] | None:
    """Stop this event loop's timeout sweeper (when the router stops); the cancelled task,
    for the caller to await."""
    found = _deadlines.pop(asyncio.get_running_loop(), None)
    if found is None:
        return None
    found.task.cancel()
    return found.task


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy URL the environment asks for (``HTTPS_PROXY`` ...), None for direct."""
    if host.startswith(LOOPBACK):
        return None
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme)
    if not url or urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
        host, proxies
    ):
        return None
    return url


class Pool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        idle_timeout: float,
        max_idle: int = 256,
        max_answer: int = DEFAULT_MAX_ANSWER,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        default_port = self.port == (443 if self.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if default_port else f"{host}:{self.port}"
        self.host_line = b"host: " + self.authority.encode("idna") + b"\r\n"
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self.max_answer = max_answer  # body bytes of one answer (more: "oversized")
        self.ssl: ssl.SSLContext | None = None
        if self.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        self.idle: list[_Connection] = []
        self._deadlines: _Deadlines | None = None
        self._connecting: set[asyncio.Task[None]] = set()  # strong references
        self.closed = False
        self.connections = 0  # opened so far (for tests and metrics)
        # through a proxy: http targets in absolute form; https through a CONNECT tunnel
        self.proxy = proxy_for(self.scheme, self.host)
        self.target_prefix = b""
        self._proxy_auth = b""
        if self.proxy:
            proxy = urlsplit(self.proxy)
            self._proxy_host = proxy.hostname or ""
            self._proxy_port = proxy.port or 80
            if proxy.username:
                credentials = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
                token = base64.b64encode(credentials.encode()).decode()
                self._proxy_auth = f"proxy-authorization: Basic {token}\r\n".encode()
            if self.scheme == "http":
                self.target_prefix = f"http://{self.authority}".encode()

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        factory: Callable[[], _Connection] = lambda: _Connection(self)  # noqa: E731
        try:
            if not self.proxy:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(
                        factory,
                        self.host,
                        self.port,
                        ssl=self.ssl,
                        server_hostname=self.host if self.ssl else None,
                    ),
                    timeout,
                )
            else:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(factory, self._proxy_host, self._proxy_port), timeout
                )
                if self.ssl is not None:
                    request = (
                        f"CONNECT {self.authority} HTTP/1.1\r\nhost: {self.authority}\r\n".encode()
                        + self._proxy_auth
                        + b"\r\n"
                    )
                    await conn.tunnel(request, timeout)
                    conn.transport = await asyncio.wait_for(
                        loop.start_tls(conn.transport, conn, self.ssl, server_hostname=self.host),
                        timeout,
                    )
        except asyncio.TimeoutError:
            raise UpstreamError(
                "connect-failure", f"connect timed out after {timeout:g}s"
            ) from None
        except (OSError, ConnectionError, ssl.SSLError) as exc:
            raise UpstreamError("connect-failure", _describe(exc)) from None
        self.connections += 1
        return conn

    def send(
        self, method: bytes, target: bytes, headers: bytes, body: bytes, timeout: float, done: Done
    ) -> None:
        """Send one request; ``done`` gets the Response or an UpstreamError (possibly
        before this returns). ``headers`` are complete ``name: value\\r\\n`` lines
        without host and content-length."""
        now = time.monotonic()
        deadline = now + timeout
        data = b"".join(
            (
                method,
                b" ",
                self.target_prefix,
                target,
                b" HTTP/1.1\r\n",
                self.host_line,
                self._proxy_auth if self.target_prefix else b"",
                headers,
                b"content-length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )
        head_only = method == b"HEAD"
        conn = self._checkout(now)
        if conn is None:
            self._connect_and_send(data, head_only, deadline, timeout, done)
            return

        def reused(outcome: Outcome) -> None:
            if (
                isinstance(outcome, UpstreamError)
                and outcome.kind == "reset"
                and not (outcome.answered)
            ):  # an idle connection the backend had closed: once more on a fresh one
                self._connect_and_send(data, head_only, deadline, timeout, done)
            else:
                done(outcome)

        self._exchange(conn, data, head_only, deadline, timeout, reused)

    async def request(
        self, method: bytes, target: bytes, headers: bytes, body: bytes, timeout: float
    ) -> Response:
        """``send`` as a coroutine: the Response, or raises UpstreamError."""
        answer: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def done(outcome: Outcome) -> None:
            if not answer.done():
                answer.set_result(outcome)

        self.send(method, target, headers, body, timeout, done)
        outcome = await answer
        if isinstance(outcome, UpstreamError):
            raise outcome
        return outcome

    def _checkout(self, now: float) -> _Connection | None:
        """An idle connection that is still open and fresh, if there is one."""
        idle = self.idle
        while idle:
            candidate = idle.pop()
            if candidate.closed or now - candidate.last_used > self.idle_timeout:
                candidate.close()
                continue
            return candidate
        return None

    def _connect_and_send(
        self, data: bytes, head_only: bool, deadline: float, timeout: float, done: Done
    ) -> None:
        async def connect() -> None:
            try:
                left = max(deadline - time.monotonic(), 0.001)
                conn = await self._connect(min(self.connect_timeout, left))
            except UpstreamError as exc:
                done(exc)
                return
            except asyncio.CancelledError:  # the router is stopping
                done(UpstreamError("connect-failure", "the router is stopping"))
                raise
            self._exchange(conn, data, head_only, deadline, timeout, done)

        task = asyncio.get_running_loop().create_task(connect())
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    def _exchange(
        self,
        conn: _Connection,
        data: bytes,
        head_only: bool,
        deadline: float,
        timeout: float,
        done: Done,
    ) -> None:
        now = time.monotonic()
        if deadline <= now:
            conn.close()
            done(UpstreamError("timeout", "no time left for this attempt"))
            return
        deadlines = self._deadlines
        if deadlines is None or deadlines.task.done():
            deadlines = self._deadlines = _deadlines_here()
        deadlines.busy[conn] = (deadline, timeout)
        conn.sent_at = now
        conn.send(data, head_only, done)

    def finished(self, conn: _Connection, outcome: Outcome) -> None:
        """A connection's request ended: pool the connection if it can serve again, then
        tell the sender."""
        done, conn.done = conn.done, None
        deadlines = self._deadlines
        if deadlines is not None:
            deadlines.busy.pop(conn, None)
        if not conn.closed:
            if not self.closed and len(self.idle) < self.max_idle:
                conn.last_used = conn.sent_at  # it may close a little early, never late
                self.idle.append(conn)
            else:
                conn.close()
        if done is not None:
            done(outcome)

    def cancel_connects(self) -> list[asyncio.Task[None]]:
        """Cancel connections being opened (when the router stops); the tasks, to await."""
        tasks = list(self._connecting)
        for task in tasks:
            task.cancel()
        return tasks

    def close(self) -> None:
        """Close idle connections now; busy ones close when their request ends."""
        self.closed = True
        for conn in self.idle:
            conn.close()
        self.idle.clear()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)
