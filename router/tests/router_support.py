"""Helpers for the router tests: real router processes, an in-process router, a steady
load generator, fake backends that count what reaches them, and manifests.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import yaml
from serving_support import ServerProcess, spawn_server

from deployer_router.background import BackgroundRouter

REPO = Path(__file__).resolve().parents[2]
JSON_BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'
BACKEND_HEADER = "x-deployer-backend"


def wait_until(
    condition: Callable[[], Any],
    timeout: float = 30.0,
    step: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll ``condition`` until it is truthy and return its value; fail the test when it
    never is (the timeout is a generous bound for an event, not a measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"{message} not reached within {timeout}s")


class LogRecords(logging.Handler):
    """Records of one logger, whatever its level and propagation (``with`` attaches it)::

    with LogRecords("deployer.router") as logs: ...; logs.messages()
    """

    def __init__(self, name: str, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.logger = logging.getLogger(name)
        self.records: list[logging.LogRecord] = []
        self._level = self.logger.level

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in list(self.records)]

    def __enter__(self) -> LogRecords:
        self.logger.addHandler(self)
        if self.logger.getEffectiveLevel() > self.level:
            self.logger.setLevel(self.level)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)


def manifest(
    name: str = "iris", backends: list[dict[str, Any]] | None = None, **settings: Any
) -> dict[str, Any]:
    """A router.yaml mapping with test-friendly health timing (fast checks)."""
    data: dict[str, Any] = {
        "version": 1,
        "name": name,
        "access_log": {"enabled": False},
        "health": {
            "active": {
                "interval": 0.3,
                "timeout": 0.5,
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
            },
            "passive": {"consecutive_failures": 2, "base_ejection": 1.0, "max_ejection": 4.0},
        },
        "timeouts": {"connect": 0.5, "request": 10, "total": 20},
        "backends": backends or [],
    }
    return _merge(data, settings)


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of ``name{labels}`` in Prometheus text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def write_manifest(path: Path, data: Mapping[str, Any]) -> Path:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(yaml.safe_dump(dict(data), sort_keys=False))
    os.replace(temporary, path)
    return path


# --- real model servers -----------------------------------------------------------------


@dataclass
class ModelBackend:
    """One real model server that tests may kill and bring back on the same port."""

    name: str
    settings: dict[str, Any]
    log_dir: Path
    server: ServerProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings['port']}"

    def alive(self) -> bool:
        return self.server.alive()

    def kill(self) -> None:
        self.server.stop(signal.SIGKILL, timeout=10)

    def start(self) -> None:
        """Start it again (same port); returns at once, see ``wait``."""
        self.server = spawn_server(self.settings, log_dir=self.log_dir)

    def wait(self) -> None:
        self.server.wait_for("/ping")

    def restart(self) -> None:
        self.start()
        self.wait()


def model_entry(backend: ModelBackend, **fields: Any) -> dict[str, Any]:
    """A manifest backend entry for a model server."""
    return {"name": backend.name, "provider": "local", "url": backend.url, **fields}


# --- the router as a real process ---------------------------------------------------------


@dataclass
class RouterProcess:
    """``python -m deployer_router serve FILE`` on 127.0.0.1:PORT."""

    process: subprocess.Popen[bytes]
    port: int
    manifest_path: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self) -> dict[str, Any]:
        answer = httpx.get(self.url + "/-/router/health", timeout=5)
        return dict(answer.json())

    def backend_states(self) -> dict[str, dict[str, Any]]:
        return {b["name"]: b for b in self.health()["backends"]}

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=5).text

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent)."""
        return metric_value(self.metrics(), name, **labels)

    def reload(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def start_router(manifest_path: Path, port: int, log_dir: Path, *extra: str) -> RouterProcess:
    log_path = log_dir / f"router-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deployer_router",
                "serve",
                str(manifest_path),
                "--port",
                str(port),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=log_dir,
        )
    router = RouterProcess(process, port, manifest_path, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"router exited with {process.returncode}:\n{router.log()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(router.url + "/-/router/ready", timeout=1).status_code == 200:
                return router
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"router did not get ready:\n{router.log()}")


# --- the router in this process (plugins registered by monkeypatch reach it) -------------


class RouterThread(BackgroundRouter):
    """deployer_router.background.BackgroundRouter from manifest data (a mapping)."""

    def __init__(self, manifest_data: Mapping[str, Any], path: Path | None = None) -> None:
        from deployer.router.manifest import Manifest

        super().__init__(Manifest.model_validate(dict(manifest_data)), path, startup_timeout=30)


# --- steady load ----------------------------------------------------------------------


class Event(NamedTuple):
    """One client request: when it ended (monotonic), its status (None: no answer), the
    backend header (or the error text), and its place in the order requests were sent."""

    at: float
    status: int | None
    backend: str
    sent: int


@dataclass(frozen=True)
class Mark:
    """A moment of a load run, as positions in its two orders: requests ``done`` (answered
    or failed) and requests ``sent`` before it. Tests cut a run into phases with marks
    taken when the event that starts a phase has been observed, never with clock offsets."""

    done: int
    sent: int


@dataclass
class LoadResult:
    """What the clients saw, in the order requests ended."""

    events: list[Event] = field(default_factory=list)
    # backend header -> name: NGINX names backends by address, and lists every backend a
    # retried request went through ("a, b"); the last one answered
    aliases: dict[str, str] = field(default_factory=dict)

    def answerer(self, event: Event) -> str:
        """The backend that answered ``event`` (by name when an alias is known)."""
        last = event.backend.rsplit(", ", 1)[-1]
        return self.aliases.get(last, last)

    @property
    def statuses(self) -> Counter[int | None]:
        return Counter(e.status for e in self.events)

    @property
    def failures(self) -> list[Event]:
        return failures(self.events)

    def between(
        self, since: Mark | None = None, until: Mark | None = None, *, whole: bool = False
    ) -> list[Event]:
        """Requests that ended between two marks; ``whole=True``: only those also sent
        after ``since`` (so they started after its event had been observed)."""
        events = self.events[since.done if since else 0 : until.done if until else None]
        if whole and since is not None:  # a request sent after a mark ends after it too
            events = [e for e in events if e.sent >= since.sent]
        return events

    def backends(
        self, since: Mark | None = None, until: Mark | None = None, *, whole: bool = False
    ) -> Counter[str]:
        """Answers per backend (any status) between two marks, see ``between``."""
        events = self.between(since, until, whole=whole)
        return Counter(self.answerer(e) for e in events if e.status is not None)

    def steady(self, names: Collection[str], count: int) -> bool:
        """The last ``count`` requests were all answered 200 by one of ``names``."""
        tail = self.events[-count:]
        return len(tail) == count and all(
            e.status == 200 and self.answerer(e) in names for e in tail
        )


def failures(events: list[Event]) -> list[Event]:
    """The requests that got no answer or a status other than 2xx."""
    return [e for e in events if e.status is None or not 200 <= e.status < 300]


class Load:
    """``concurrency`` threads, each on one keep-alive connection, POSTing in a loop
    (with ``pause`` seconds between requests so the machine stays responsive)."""

    def __init__(
        self,
        url: str,
        path: str = "/invocations",
        body: bytes = JSON_BODY,
        content_type: str = "application/json",
        concurrency: int = 4,
        pause: float = 0.002,
    ) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.path = path
        self.body = body
        self.content_type = content_type
        self.concurrency = concurrency
        self.pause = pause
        self.result = LoadResult()
        self._sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        for _ in range(self.concurrency):
            thread = threading.Thread(target=self._worker, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        return self.result

    def count(self) -> int:
        return len(self.result.events)

    def mark(self) -> Mark:
        """This moment of the run (see ``Mark``)."""
        with self._lock:
            return Mark(len(self.result.events), self._sent)

    def wait_for(
        self, condition: Callable[[LoadResult], object], message: str, timeout: float = 60.0
    ) -> Mark:
        """Wait until ``condition(result)`` holds; the mark of that moment."""
        wait_until(lambda: condition(self.result), timeout=timeout, message=message)
        return self.mark()

    def wait_steady(
        self, names: Collection[str], message: str, count: int = 100, timeout: float = 60.0
    ) -> Mark:
        """Wait until the last ``count`` requests were all answered 200 by ``names``."""
        return self.wait_for(lambda r: r.steady(names, count), message, timeout)

    def _worker(self) -> None:
        conn: http.client.HTTPConnection | None = None
        headers = {"content-type": self.content_type}
        while not self._stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
            with self._lock:
                sent = self._sent
                self._sent += 1
            try:
                conn.request("POST", self.path, self.body, headers)
                answer = conn.getresponse()
                answer.read()
                event = Event(
                    time.monotonic(), answer.status, answer.getheader(BACKEND_HEADER) or "", sent
                )
            except (OSError, http.client.HTTPException) as exc:
                event = Event(time.monotonic(), None, f"{type(exc).__name__}: {exc}", sent)
                conn.close()
                conn = None
            with self._lock:
                self.result.events.append(event)
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()


# --- fake backends ------------------------------------------------------------------------


class FakeBackend:
    """A threaded HTTP/1.1 server that counts requests and answers as told:
    ``status`` (default 200), an optional ``delay``, ``check`` (a function of
    (method, path, headers, body) returning an error text or None: 403 with it), and
    ``gate``: when set to an Event, every request but ``/ping`` waits for it (released by
    the test) before it is answered."""

    def __init__(
        self, name: str = "fake", status: int = 200, delay: float = 0.0, body: bytes | None = None
    ) -> None:
        self.name = name
        self.status = status
        self.delay = delay
        self.body = body
        self.check: Callable[[str, str, dict[str, str], bytes], str | None] | None = None
        self.gate: threading.Event | None = None
        self.requests: Counter[str] = Counter()
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # header and body go out in two writes

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = _read_body(self.rfile, self.headers)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer.lock:
                    outer.requests[self.path] += 1
                    outer.seen.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": headers,
                            "body": body,
                        }
                    )
                if outer.delay:
                    time.sleep(outer.delay)
                if outer.gate is not None and self.path != "/ping":
                    outer.gate.wait(120)
                problem = None
                if outer.check is not None:
                    problem = outer.check(self.command, self.path, headers, body)
                status, payload = outer.status, outer.body
                if problem:
                    status, payload = 403, json.dumps({"error": problem}).encode()
                if payload is None:
                    payload = json.dumps({"backend": outer.name, "path": self.path}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _handle

            def do_HEAD(self) -> None:
                with outer.lock:
                    outer.requests[self.path] += 1
                self.send_response(outer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "42")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def total(self, exclude: tuple[str, ...] = ("/ping",)) -> int:
        with self.lock:
            return sum(n for path, n in self.requests.items() if path not in exclude)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _read_body(stream: Any, headers: Any) -> bytes:
    """A request body, by Content-Length or chunked (trailers are skipped)."""
    if "chunked" not in (headers.get("transfer-encoding") or "").lower():
        length = int(headers.get("content-length") or 0)
        return bytes(stream.read(length)) if length else b""
    chunks: list[bytes] = []
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunks.append(stream.read(size))
        stream.readline()


@contextlib.contextmanager
def fake_backends(*specs: dict[str, Any]) -> Iterator[list[FakeBackend]]:
    backends = [FakeBackend(**spec) for spec in specs]
    try:
        yield backends
    finally:
        for backend in backends:
            backend.close()
