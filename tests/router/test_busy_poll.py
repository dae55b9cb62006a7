"""Busy polling (``busy_poll`` in router.yaml, ``--busy-poll``): the loop spins while
requests flow or are in flight, goes back to sleeping when idle, follows reloads, and
the command line overrides the manifest. HAProxy gets ``busy-polling`` when rendered."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvloop
from router_support import (
    FakeBackend,
    RouterThread,
    manifest,
    start_router,
    wait_until,
    write_manifest,
)
from serving_support import free_port

from deployer.router.busypoll import BusyPoller
from deployer.router.manifest import Manifest, parse
from deployer.router.render import render


def test_spins_while_requests_flow_or_are_in_flight_then_sleeps() -> None:
    traffic = SimpleNamespace(requests=0, in_flight=0)
    poller = BusyPoller(traffic, idle_seconds=0.05)

    async def scenario() -> None:
        poller.wake()
        traffic.requests += 1
        await asyncio.sleep(0.01)
        assert poller.running and poller.spins > 0
        traffic.in_flight = 1  # a slow backend: keep polling for its answer past idle
        await asyncio.sleep(0.2)
        assert poller.running
        traffic.in_flight = 0
        await asyncio.sleep(0.2)
        assert not poller.running
        spins = poller.spins
        await asyncio.sleep(0.1)
        assert poller.spins == spins  # asleep: the loop is not turning
        poller.wake()  # the next request starts it again
        await asyncio.sleep(0.01)
        assert poller.running and poller.spins > spins
        poller.enabled = False
        await asyncio.sleep(0.01)
        assert not poller.running
        poller.wake()
        assert not poller.running  # disabled: a request does not start it

    uvloop.run(scenario())


def test_new_requests_extend_the_window() -> None:
    traffic = SimpleNamespace(requests=0, in_flight=0)
    poller = BusyPoller(traffic, idle_seconds=0.1)

    async def scenario() -> None:
        poller.wake()
        for _ in range(6):  # 0.3 s of requests every 0.05 s: longer than idle_seconds
            traffic.requests += 1
            await asyncio.sleep(0.05)
            assert poller.running
        await asyncio.sleep(0.3)
        assert not poller.running

    uvloop.run(scenario())


def _polling(url: str) -> dict[str, object]:
    return dict(httpx.get(url + "/-/router/health", timeout=5).json()["busy_poll"])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_during(pid: int, action: Callable[[], object]) -> float:
    before = _cpu_seconds(pid)
    action()
    return _cpu_seconds(pid) - before


@pytest.mark.parametrize("flag", ["--busy-poll", "--no-busy-poll"])
def test_router_process_spins_while_a_request_is_in_flight_and_sleeps_when_idle(
    tmp_path: Path, flag: str
) -> None:
    """CPU of the router process: a 2 s backend answer keeps a busy-polling router
    spinning (a large share of a core); without it, or once idle, it uses almost none."""
    slow = FakeBackend("slow", delay=2.0)
    try:
        data = manifest(
            backends=[{"name": "slow", "url": slow.url, "health": {"source": "none"}}],
            busy_poll={"idle_ms": 100},
        )
        path = write_manifest(tmp_path / "router.yaml", data)
        router = start_router(path, free_port(), tmp_path, flag)
        pid = router.process.pid
        try:

            def one_request() -> None:
                answer = httpx.post(router.url + "/invocations", content=b"{}", timeout=10)
                assert answer.status_code == 200
                assert answer.headers["x-deployer-backend"] == "slow"

            waiting = _cpu_during(pid, one_request)
            time.sleep(0.5)  # past idle_ms
            idle = _cpu_during(pid, lambda: time.sleep(1.0))
            state = _polling(router.url)
        finally:
            assert router.stop() == 0
    finally:
        slow.close()
    assert idle < 0.1, f"an idle router used {idle:.2f} s of CPU in 1 s"
    if flag == "--busy-poll":
        assert state["enabled"] is True and int(str(state["spins"])) > 0
        assert waiting > 0.3, f"busy polling used only {waiting:.2f} s of CPU in 2 s"
    else:
        assert state == {"enabled": False, "spinning": False, "spins": 0}
        assert waiting < 0.1, f"a sleeping router used {waiting:.2f} s of CPU in 2 s"


def test_the_command_line_overrides_the_manifest(tmp_path: Path) -> None:
    fake = FakeBackend("fake")
    try:
        backend = [{"name": "fake", "url": fake.url, "health": {"source": "none"}}]
        on = manifest(backends=backend, busy_poll={"enabled": True})
        router = start_router(write_manifest(tmp_path / "on.yaml", on), free_port(), tmp_path)
        try:
            httpx.post(router.url + "/invocations", content=b"{}", timeout=10)
            assert _polling(router.url)["enabled"] is True
        finally:
            router.stop()
        router = start_router(tmp_path / "on.yaml", free_port(), tmp_path, "--no-busy-poll")
        try:
            httpx.post(router.url + "/invocations", content=b"{}", timeout=10)
            assert _polling(router.url) == {"enabled": False, "spinning": False, "spins": 0}
        finally:
            router.stop()
    finally:
        fake.close()


def test_reload_turns_it_on_and_off() -> None:
    fake = FakeBackend("fake")
    backend = [{"name": "fake", "url": fake.url, "health": {"source": "none"}}]
    try:
        with RouterThread(manifest(backends=backend)) as thread:
            router = thread.router
            assert router is not None and router.poller is not None
            assert router.poller.enabled is False
            on = Manifest.model_validate(manifest(backends=backend, busy_poll={"enabled": True}))
            assert thread.call(router.reload(on))
            httpx.post(thread.url + "/invocations", content=b"{}", timeout=10)
            assert router.poller.enabled is True
            wait_until(lambda: router.poller is not None and router.poller.spins > 0)
            assert thread.call(router.reload(Manifest.model_validate(manifest(backends=backend))))
            assert router.poller.enabled is False
            wait_until(lambda: router.poller is not None and not router.poller.running)
    finally:
        fake.close()


def test_manifest_rejects_a_bad_idle_window() -> None:
    from deployer.errors import DeployerError

    with pytest.raises(DeployerError, match=r"busy_poll\.idle_ms"):
        parse("name: iris\nbusy_poll: {enabled: true, idle_ms: 0}\nbackends: []\n")


def test_push_keeps_the_setting() -> None:
    from deployer.router.manifest import dump, from_backends

    old = parse("name: iris\nbusy_poll: {enabled: true, idle_ms: 20}\nbackends: []\n")
    kept = from_backends("iris", [], old)
    assert kept.busy_poll.enabled and kept.busy_poll.idle_ms == 20
    assert parse(dump(kept)).busy_poll == old.busy_poll


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")
def test_haproxy_renders_busy_polling_and_accepts_it(tmp_path: Path) -> None:
    text = "name: iris\nbusy_poll: {enabled: true}\nbackends:\n  - {name: a, url: 'http://127.0.0.1:9'}\n"
    rendered = render(parse(text), "haproxy")
    assert "    busy-polling\n" in rendered.text.split("defaults")[0]
    assert any("busy-polling" in note for note in rendered.notes)
    path = tmp_path / "haproxy.cfg"
    path.write_text(rendered.text)
    check = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    plain = render(parse(text.replace("enabled: true", "enabled: false")), "haproxy")
    assert "busy-polling" not in plain.text
    for fmt in ("nginx", "envoy", "kubernetes"):
        assert any("busy_poll" in note for note in render(parse(text), fmt).notes), fmt
