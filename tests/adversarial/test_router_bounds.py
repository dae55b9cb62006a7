"""The built-in router against hostile clients (issue 14, items 8 and 12): every buffer
and wait it keeps for a client is bounded, and nothing internal leaks.

A real router process (``python -m deployer_router serve``) on 127.0.0.1 in front of a
real HTTP backend; raw sockets play endless and slow clients. Tests assert outcomes: the
status the router answers, the connection it closes, its resident memory (``/proc``)
after the attack, its health route answering during it. Timeouts only guard against
hangs; no test measures time.
"""

from __future__ import annotations

import contextlib
import json
import math
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from router_support import FakeBackend, RouterProcess, manifest, start_router, wait_until
from router_support import write_manifest as save_manifest
from serving_support import free_port

from deployer.errors import ConfigError
from deployer.router.manifest import Limits, Manifest, parse
from deployer_router.redact import redact_url
from deployer_router.render import envoy as envoy_module
from deployer_router.render import render

GUARD = 60.0  # seconds: a hang guard, never a measurement
MB = 1024 * 1024
RSS_GROWTH_KB = 24 * 1024  # what an attack may add to the router's memory, at most


# --- fixtures and helpers ------------------------------------------------------------


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend("model")
    yield fake
    fake.close()


@pytest.fixture
def router(tmp_path: Path, backend: FakeBackend) -> Iterator[Callable[..., RouterProcess]]:
    """``router(**settings)``: a router process for ``backend`` with these manifest
    settings (merged over the test defaults); stopped after the test."""
    started: list[RouterProcess] = []

    def start(backends: list[dict[str, Any]] | None = None, **settings: Any) -> RouterProcess:
        entries = backends or [{"name": "model", "url": backend.url}]
        data = manifest(backends=entries, **settings)
        path = save_manifest(tmp_path / f"router-{len(started)}.yaml", data)
        process = start_router(path, free_port(), tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def rss_kb(pid: int) -> int:
    """The resident memory of process ``pid`` (kB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def settled_rss(router: RouterProcess) -> int:
    """The router's memory once it has served a few requests (pools, caches warm)."""
    for _ in range(20):
        assert httpx.get(router.url + "/warm", timeout=10).status_code == 200
    return rss_kb(router.process.pid)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when there is none)."""
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else 0


def complete(answer: bytes) -> bool:
    """A whole HTTP answer (content-length framed) has arrived."""
    end = answer.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in answer[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(answer) >= end + 4 + int(value)
    return True


def flood(
    port: int,
    head: bytes,
    filler: bytes,
    total: int,
    during: Callable[[], None] | None = None,
) -> tuple[bytes, int]:
    """Send ``head`` then ``filler`` again and again (``total`` bytes at most) while
    reading; stop when the router has answered or closed. ``during`` runs once, after the
    first 32 kB (the attack in progress). The answer, and how many bytes were sent."""
    sent = 0
    answer = b""
    pending = head
    sending = True
    deadline = time.monotonic() + GUARD
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
        sock.setblocking(False)
        while not complete(answer):
            if time.monotonic() > deadline:
                pytest.fail(f"no answer after sending {sent} bytes (hang guard)")
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], 1.0)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                answer += chunk
                continue
            if writable:
                if not pending:
                    pending = filler
                try:
                    count = sock.send(pending)
                except BlockingIOError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    sending = False
                    continue
                before, sent = sent, sent + count
                pending = pending[count:]
                if during is not None and before < 32 * 1024 <= sent:
                    during()
                if sent >= total:
                    sending = False
    return answer, sent


def hold(port: int, data: bytes) -> socket.socket:
    """A connection that sent ``data`` (an unfinished request) and waits."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    sock.sendall(data)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """What the router answers on ``sock`` until the answer is whole or it closes."""
    answer = b""
    with contextlib.suppress(ConnectionResetError):
        while not complete(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def health_ok(url: str) -> bool:
    answer = httpx.get(url + "/-/router/health", timeout=10)
    return answer.status_code == 200 and bool(answer.json()["ok"])


def log_events(router: RouterProcess) -> list[dict[str, Any]]:
    """The router's JSON event lines (stderr and stdout share its log file)."""
    events = []
    for line in router.log().splitlines():
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict):
                events.append(data)
    return events


# --- the head: URL, header size and count, read while it arrives ----------------------


def test_an_endless_header_value_gets_431_with_memory_flat(router: Any) -> None:
    process = router()
    baseline = settled_rss(process)
    seen_during: list[bool] = []
    answer, _ = flood(
        process.port,
        b"GET /x HTTP/1.1\r\nhost: x\r\nx-endless: ",
        b"a" * 65536,
        48 * MB,
        during=lambda: seen_during.append(health_ok(process.url)),
    )
    assert status_of(answer) == 431, answer[:200]
    assert seen_during == [True]  # the health route answered while the header grew
    assert rss_kb(process.process.pid) < baseline + RSS_GROWTH_KB
    assert health_ok(process.url)


def test_many_small_headers_stop_at_the_count(router: Any, backend: FakeBackend) -> None:
    process = router(limits={"header_count": 20})
    few = b"".join(b"x-h%d: v\r\n" % i for i in range(10))
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(30))
    answer, _ = flood(process.port, b"GET /few HTTP/1.1\r\nhost: x\r\n" + few + b"\r\n", b"", 0)
    assert status_of(answer) == 200
    answer, _ = flood(process.port, b"GET /many HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n", b"", 0)
    assert status_of(answer) == 431
    assert b"more than 20 request headers" in answer
    assert backend.requests["/many"] == 0


def test_a_reload_applies_new_limits(router: Any, backend: FakeBackend) -> None:
    process = router()
    headers = b"".join(b"x-h%d: v\r\n" % i for i in range(30))
    request = b"GET /reloaded HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n"
    assert status_of(flood(process.port, request, b"", 0)[0]) == 200
    data = yaml.safe_load(process.manifest_path.read_text())
    data["limits"] = {"header_count": 20}
    save_manifest(process.manifest_path, data)
    process.reload()
    wait_until(
        lambda: any(e.get("event") == "manifest reloaded" for e in log_events(process)),
        message="the reload",
    )
    assert status_of(flood(process.port, request, b"", 0)[0]) == 431


def test_an_endless_url_gets_414_is_not_forwarded_nor_logged(
    router: Any, backend: FakeBackend, tmp_path: Path
) -> None:
    access = tmp_path / "access.log"
    process = router(access_log={"enabled": True, "path": str(access)})
    baseline = settled_rss(process)
    answer, _ = flood(process.port, b"GET /long", b"a" * 65536, 48 * MB)
    assert status_of(answer) == 414, answer[:200]
    assert rss_kb(process.process.pid) < baseline + RSS_GROWTH_KB
    assert not any(path.startswith("/longaaaa") for path in backend.requests)
    # the log has flushed the requests after the attack; no line carries the URL
    assert httpx.get(process.url + "/after", timeout=10).status_code == 200
    wait_until(lambda: '"/after"' in access.read_text(), message="the access log line")
    assert max(len(line) for line in access.read_text().splitlines()) < 2048


def test_the_access_log_cuts_a_long_url(router: Any, backend: FakeBackend, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    process = router(
        access_log={"enabled": True, "path": str(access)}, limits={"log_field_bytes": 256}
    )
    path = "/" + "b" * 6000
    assert httpx.get(process.url + path, timeout=10).status_code == 200
    assert backend.requests[path] == 1  # under url_bytes: forwarded whole
    line = wait_until(
        lambda: next((x for x in access.read_text().splitlines() if "/bbbb" in x), None),
        message="the access log line",
    )
    logged = json.loads(line)["path"]
    assert logged == path[:256] + "..."


# --- slow clients: head and body timeouts, connections per process ------------------------


def test_slow_heads_get_408_while_health_answers(router: Any) -> None:
    process = router(limits={"header_timeout": 1.0})
    slow = [hold(process.port, b"GET /slow HTTP/1.1\r\nhost: x\r\nx-wait: ") for _ in range(30)]
    try:
        assert health_ok(process.url)  # the held connections do not stop the router
        answers = [read_answer(sock) for sock in slow]
    finally:
        for sock in slow:
            sock.close()
    assert [status_of(a) for a in answers] == [408] * 30
    assert all(b"request head not received within 1s" in a for a in answers)


def test_a_head_sent_byte_by_byte_still_times_out(router: Any) -> None:
    """Trickling bytes does not reset the head's clock (it counts from the first byte)."""
    process = router(limits={"header_timeout": 1.0})
    with hold(process.port, b"GET /trickle HTTP/1.1\r\nhost: x\r\nx-trickle: ") as sock:
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + GUARD
        while not complete(answer) and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            else:
                with contextlib.suppress(BlockingIOError):
                    sock.send(b"a")
    assert status_of(answer) == 408, answer[:200]


def test_a_slow_body_gets_408(router: Any, backend: FakeBackend) -> None:
    process = router(limits={"body_timeout": 1.0})
    with hold(
        process.port, b"POST /slow-body HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123"
    ) as sock:
        answer = read_answer(sock)
    assert status_of(answer) == 408
    assert b"request body not received within 1s" in answer
    assert backend.requests["/slow-body"] == 0


def test_connections_past_the_limit_get_503_and_admin_still_answers(router: Any) -> None:
    admin_port = free_port()
    process = router(
        limits={"connections": 16, "header_timeout": 300.0},
        admin={"port": admin_port},
    )
    held = [hold(process.port, b"GET /held HTTP/1.1\r\n") for _ in range(16)]
    try:
        with socket.create_connection(("127.0.0.1", process.port), timeout=GUARD) as extra:
            answer = read_answer(extra)
        assert status_of(answer) == 503
        assert b"limit of 16 connections" in answer
        assert health_ok(f"http://127.0.0.1:{admin_port}")  # during the attack
    finally:
        for sock in held:
            sock.close()

    def serves() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(process.url + "/again", timeout=10).status_code == 200
        return False

    wait_until(serves, message="the router serving again once the connections closed")


# --- bodies both ways -----------------------------------------------------------------------


def test_request_bodies_over_the_limit_get_413_with_memory_flat(
    router: Any, backend: FakeBackend
) -> None:
    process = router(limits={"body_mb": 1})
    baseline = settled_rss(process)
    head = b"POST /declared HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (2 * MB)
    answer, _ = flood(process.port, head, b"", 0)
    assert status_of(answer) == 413
    chunk = b"%x\r\n%s\r\n" % (MB, b"c" * MB)
    answer, _ = flood(
        process.port,
        b"POST /chunked HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        chunk,
        48 * MB,
    )
    assert status_of(answer) == 413
    assert rss_kb(process.process.pid) < baseline + RSS_GROWTH_KB
    assert backend.requests["/declared"] == backend.requests["/chunked"] == 0
    small = httpx.post(process.url + "/small", content=b"s" * (MB // 2), timeout=10)
    assert small.status_code == 200


def test_an_answer_over_the_limit_gets_502_and_the_backend_stays_in(tmp_path: Path) -> None:
    big = FakeBackend("big", body=b"z" * (3 * MB))
    data = manifest(
        backends=[{"name": "big", "url": big.url, "health": {"source": "none"}}],
        limits={"response_mb": 1},
    )
    path = save_manifest(tmp_path / "router.yaml", data)
    process = start_router(path, free_port(), tmp_path)
    try:
        for _ in range(4):  # more than passive.consecutive_failures (2)
            answer = httpx.get(process.url + "/big", timeout=10)
            assert answer.status_code == 502
            assert answer.json()["backend"] == "big"
            assert "too large" in answer.json()["error"]
        assert process.backend_states()["big"]["available"] is True
    finally:
        process.stop()
        big.close()


# --- nothing internal leaks ---------------------------------------------------------------


def test_health_redacts_backend_credentials_and_logs_name_the_backend(
    router: Any, backend: FakeBackend
) -> None:
    url = f"http://user:s3cret@127.0.0.1:{backend.port}/base?token=t0ken&v=1"
    process = router(backends=[{"name": "secretive", "url": url}])
    answer = httpx.get(process.url + "/-/router/health", timeout=10)
    assert "s3cret" not in answer.text and "t0ken" not in answer.text
    shown = answer.json()["backends"][0]["url"]
    assert shown == f"http://***@127.0.0.1:{backend.port}/base?token=***&v=1"
    backend.status = 503  # its active check fails: the router logs the change

    def changed() -> dict[str, Any] | None:
        return next(
            (e for e in log_events(process) if e.get("event") == "backend health changed"), None
        )

    event = wait_until(changed, message="the 'backend health changed' line")
    assert event["backend"] == "secretive"
    assert event["backend_url"] == shown
    assert "s3cret" not in process.log() and "t0ken" not in process.log()


def test_admin_routes_move_to_their_own_port(router: Any, backend: FakeBackend) -> None:
    admin_port = free_port()
    process = router(admin={"port": admin_port})
    admin = f"http://127.0.0.1:{admin_port}"
    assert httpx.get(process.url + "/-/router/health", timeout=10).status_code == 404
    assert httpx.get(process.url + "/-/router/live", timeout=10).status_code == 200
    assert httpx.get(process.url + "/-/router/ready", timeout=10).status_code == 200
    forwarded = httpx.get(process.url + "/metrics", timeout=10)  # a path like any other now
    assert forwarded.headers["x-deployer-backend"] == "model"
    assert health_ok(admin)
    assert "deployer_router_backend_requests" in httpx.get(admin + "/metrics", timeout=10).text
    assert httpx.get(admin + "/elsewhere", timeout=10).status_code == 404
    assert backend.requests["/elsewhere"] == 0
    listening = [e for e in log_events(process) if e.get("event") == "router listening"]
    assert listening[0]["admin"] == f"127.0.0.1:{admin_port}"


def test_admin_routes_can_be_turned_off(router: Any, backend: FakeBackend) -> None:
    process = router(admin={"enabled": False})
    assert httpx.get(process.url + "/-/router/health", timeout=10).status_code == 404
    assert httpx.get(process.url + "/-/router/ready", timeout=10).status_code == 200
    assert httpx.get(process.url + "/metrics", timeout=10).headers["x-deployer-backend"] == "model"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@h.example/x", "https://***@h.example/x"),
        ("https://h.example/x?sig=abc&se=2030&api-version=1", "https://h.example/x?sig=***&se=2030&api-version=1"),
        ("http://h:8080/?access_token=a&X-Amz-Signature=b", "http://h:8080/?access_token=***&X-Amz-Signature=***"),
        ("http://h:8080/plain", "http://h:8080/plain"),
    ],
)  # fmt: skip
def test_redaction(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# --- the settings and the renderers -------------------------------------------------------


def test_limits_are_one_block_with_the_legacy_body_field_read_into_it() -> None:
    assert Manifest.model_validate({"name": "p"}).limits == Limits()
    legacy = Manifest.model_validate({"name": "p", "max_body_mb": 2})
    assert legacy.limits.body_mb == 2 and legacy.max_body_mb == 2
    with pytest.raises(ConfigError) as caught:
        parse("name: p\nmax_body_mb: 2\nlimits: {body_mb: 3}\n", "router.yaml")
    assert "max_body_mb" in str(caught.value) and "limits.body_mb" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse("name: p\nlimits: {connections: 0}\n", "router.yaml")
    assert "limits.connections" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse("name: p\nlisten: {port: 9000}\nadmin: {port: 9000}\n", "router.yaml")
    assert "admin.port" in str(caught.value)


def _limited(tmp_path: Path) -> Manifest:
    data = manifest(
        backends=[{"name": "a", "url": "http://127.0.0.1:8081"}],
        limits={
            "url_bytes": 4096,
            "header_bytes": 32768,
            "header_count": 50,
            "header_timeout": 7,
            "body_timeout": 30,
            "idle_timeout": 45,
            "body_mb": 2,
            "connections": 500,
        },
    )
    return Manifest.model_validate(data)


@pytest.mark.skipif(
    not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists(),
    reason="haproxy is not installed",
)
def test_haproxy_gets_the_limits(tmp_path: Path) -> None:
    text = render(_limited(tmp_path), "haproxy").text
    assert "maxconn 500" in text
    assert "tune.http.maxhdr 50" in text
    assert f"tune.bufsize {4096 + 32768 + 2048}" in text
    assert "timeout http-request 7s" in text and "timeout http-keep-alive 45s" in text
    assert f"deny_status 413 if {{ req.hdr_val(content-length) gt {2 * MB} }}" in text
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    check = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.skipif(
    not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists(),
    reason="nginx is not installed",
)
def test_nginx_gets_the_limits(tmp_path: Path) -> None:
    text = render(_limited(tmp_path), "nginx", pid=str(tmp_path / "pid"), temp=str(tmp_path)).text
    assert "client_max_body_size 2048k;" in text
    assert "client_header_timeout 7s;" in text and "client_body_timeout 30s;" in text
    assert "large_client_header_buffers 8 4k;" in text and "keepalive_timeout 45s;" in text
    assert "worker_connections 1000;" in text
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    check = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_envoy_gets_the_limits(tmp_path: Path) -> None:
    doc = yaml.safe_load(render(_limited(tmp_path), "envoy").text)
    assert envoy_module.validate(doc) == []
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["max_request_headers_kb"] == math.ceil((4096 + 32768) / 1024)
    assert hcm["common_http_protocol_options"] == {"max_headers_count": 50, "idle_timeout": "45s"}
    assert hcm["request_headers_timeout"] == "7s"
    assert hcm["request_timeout"] == "37s"
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == ["envoy.filters.http.buffer", "envoy.filters.http.router"]
    assert hcm["http_filters"][0]["typed_config"]["max_request_bytes"] == 2 * MB
