"""uvicorn's httptools protocol with the bounds httptools and uvicorn leave out.

Standalone (the standard library, httptools and uvicorn only), so the local target's
front runs it too (deployer/local/front.py); the model server's subclass, with its
bounds from the serving settings, is deployer/serving/protocol.py.

httptools accumulates a header line, however long, and uvicorn waits for headers and
bodies forever and has no cap on connections that still lets health probes in. This
class adds, per connection:

- the request line and headers are cut at ``max_header_bytes`` and ``max_headers``: 431,
  then the connection is closed; bytes are counted as they arrive, so an endless header
  costs at most the limit plus one read;
- headers must be complete within ``header_timeout_s`` of the connection (or of the first
  byte of the next request) and a body within ``body_timeout_s`` of its headers: 408, then
  the connection is closed;
- a body still arriving after its answer was sent (413 ...) is dropped as uvicorn does,
  but once the body passes twice ``max_body_bytes`` (the limit and as much again, counted
  from the body's first byte) the connection is closed instead;
- above ``max_connections`` per worker a connection gets 503 and is closed, except that a
  few more may still ask a health route (``/ping`` ...), so probes keep answering.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger("deployer.serving")


@dataclass(frozen=True)
class Bounds:
    """The per-connection limits one worker enforces."""

    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    body_timeout_s: float
    max_body_bytes: int
    max_connections: int
    health_overflow: int
    health_paths: frozenset[str]
    # how messages name a limit: LABEL + field, e.g. serving.limits.max_headers
    label: str = "serving.limits."


class _Rejected(Exception):
    """Raised inside a parser callback to stop parsing; the answer is in ``_rejection``."""


class BoundedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with header, timeout and connection bounds (see the module doc).

    A subclass says where its bounds come from (``load_bounds``)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.bounds = self.load_bounds()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._overflow = False
        self._rejection: tuple[int, str] | None = None
        self._finished = False

    def load_bounds(self) -> Bounds:
        raise NotImplementedError

    # --- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        count = len(self.connections)
        cap = self.bounds.max_connections
        if count > cap:
            if count > cap + self.bounds.health_overflow:
                self._reply_and_close(503, _over_cap_message(cap, self.bounds.label))
                return
            self._overflow = True  # a health probe may still be answered
        self._arm(self.bounds.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._finished:
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
            if self._timer is None:  # the first byte of the next request on this connection
                self._arm(self.bounds.header_timeout_s, self._head_timed_out)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            return
        except (httptools.HttpParserError, _Rejected):
            if self._rejection is not None:
                self._reply_and_close(*self._rejection)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            self._finished = True
            return
        if self._in_head and self._head_bytes > self.bounds.max_header_bytes:
            self._reply_and_close(431, self._head_too_large())

    # --- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._body_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_head = False
        problem = self._head_problem()
        if problem is not None:
            self._rejection = problem
            raise _Rejected(problem[1])
        super().on_headers_complete()
        if self._overflow and self.cycle is not None:
            self.cycle.keep_alive = False  # answer the probe, then free the slot
        self._arm(self.bounds.body_timeout_s, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        self._body_bytes += len(body)  # the body's bytes so far
        # Answered before the body ended (413, 405 ...): uvicorn drops the rest to keep the
        # connection; once the body passes the limit and another max_body_bytes, stop
        # reading and close it. Counted from the body's start, not from the answer: how
        # early the answer went out must not decide whether a keep-alive client's next
        # request finds the connection open.
        answered = cycle is not None and cycle.response_complete and not self._finished
        if answered and self._body_bytes > 2 * self.bounds.max_body_bytes:
            self._finished = True
            self._disarm()
            self.transport.close()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # --- bounds --------------------------------------------------------------------------

    def _head_problem(self) -> tuple[int, str] | None:
        """431 for too many or too large headers, 503 for a non-health request over the cap."""
        bounds = self.bounds
        if self._header_count > bounds.max_headers:
            return 431, (
                f"the request has more than {bounds.max_headers} headers "
                f"({self.bounds.label}max_headers)"
            )
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > bounds.max_header_bytes:
            return 431, self._head_too_large()
        if self._overflow and _path(self.url) not in bounds.health_paths:
            return 503, _over_cap_message(bounds.max_connections, bounds.label)
        return None

    def _head_too_large(self) -> str:
        return (
            f"the request line and headers are over the {self.bounds.max_header_bytes}-byte "
            f"limit ({self.bounds.label}max_header_bytes)"
        )

    def _head_timed_out(self) -> None:
        self._timer = None
        self._reply_and_close(
            408,
            f"the request headers did not arrive within {self.bounds.header_timeout_s:g}s "
            f"({self.bounds.label}header_timeout_s)",
        )

    def _body_timed_out(self) -> None:
        self._timer = None
        if self.pipeline:  # queued behind a request still answering: reading is paused
            self._arm(self.bounds.body_timeout_s, self._body_timed_out)
            return
        self._reply_and_close(
            408,
            f"the request body did not arrive within {self.bounds.body_timeout_s:g}s "
            f"({self.bounds.label}body_timeout_s)",
        )

    def _arm(self, seconds: float, callback: object) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)  # type: ignore[arg-type]

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _reply_and_close(self, status: int, message: str) -> None:
        """Answer ``status`` with a JSON error (unless an answer is under way) and close."""
        self._finished = True
        self._disarm()
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            body = json.dumps({"error": message}).encode()
            head = (
                b"content-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n" % len(body)
            )
            transport.write(STATUS_LINE[status] + head + body)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app stops reading and its answer is dropped
            cycle.message_event.set()
        _log_rejection(status, message)
        transport.close()


_LOG_EVERY_S = 10.0
_rejections = {"since": 0, "last": 0.0}


def _log_rejection(status: int, message: str) -> None:
    """Log a closed connection, at most once per 10 s (a flood must not flood the log)."""
    now = time.monotonic()
    _rejections["since"] += 1
    if now - _rejections["last"] < _LOG_EVERY_S:
        return
    count = int(_rejections["since"])
    _rejections.update(since=0, last=now)
    more = f" ({count - 1} more closed since the last such line)" if count > 1 else ""
    log.warning("closed a connection: %d %s%s", status, message, more)


def _path(url: bytes) -> str:
    try:
        return httptools.parse_url(url).path.decode("latin-1")
    except httptools.HttpParserInvalidURLError:
        return ""


def _over_cap_message(cap: int, label: str) -> str:
    return (
        f"the server holds its limit of {cap} connections per worker "
        f"({label}max_connections); retry later"
    )
