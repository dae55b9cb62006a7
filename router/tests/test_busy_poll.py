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

from deployer.router.manifest import Manifest, parse
from deployer_router.busypoll import BusyPoller
from deployer_router.render import render


class Clock:
    """The poller's clock, moved by hand: its idle window passes only when a test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(condition: Callable[[], bool], message: str, timeout: float = 30.0) -> None:
    """Let the loop turn until ``condition()`` holds (fail after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{message} not reached within {timeout}s")
        await asyncio.sleep(0.001)


async def spun(poller: BusyPoller) -> None:
    """Wait for the poller's next turn (which sees whatever changed before this call)."""
    spins = poller.spins
    await until(lambda: poller.spins > spins, "the next spin")


def test_spins_while_requests_flow_or_are_in_flight_then_sleeps() -> None:
    traffic = SimpleNamespace(requests=0, in_flight=0)
    clock = Clock()
    poller = BusyPoller(traffic, idle_seconds=0.05, clock=clock)

    async def scenario() -> None:
        poller.wake()
        traffic.requests += 1
        await spun(poller)
        assert poller.running
        traffic.in_flight = 1  # a slow backend: keep polling for its answer past idle
        await spun(poller)
        clock.now += 10 * poller.idle_seconds
        await spun(poller)
        assert poller.running
        traffic.in_flight = 0  # answered: the idle window starts now
        await spun(poller)
        assert poller.running
        clock.now += poller.idle_seconds
        await until(lambda: not poller.running, "asleep after idle_seconds")
        spins = poller.spins
        for _ in range(20):
            await asyncio.sleep(0)
        assert poller.spins == spins  # asleep: nothing polls any more
        poller.wake()  # the next request starts it again
        await spun(poller)
        assert poller.running
        poller.enabled = False
        await until(lambda: not poller.running, "stopped when disabled")
        poller.wake()
        assert not poller.running  # disabled: a request does not start it

    uvloop.run(scenario())


def test_new_requests_extend_the_window() -> None:
    traffic = SimpleNamespace(requests=0, in_flight=0)
    clock = Clock()
    poller = BusyPoller(traffic, idle_seconds=0.1, clock=clock)

    async def scenario() -> None:
        started = clock.now
        poller.wake()
        for _ in range(6):  # a request every 0.05 s (poller time) for longer than idle
            traffic.requests += 1
            await spun(poller)  # it saw the request
            clock.now += 0.05
            await spun(poller)  # and the time since
            assert poller.running
        assert clock.now - started > 2 * poller.idle_seconds
        clock.now += poller.idle_seconds
        await until(lambda: not poller.running, "asleep after the last request")

    uvloop.run(scenario())


# The share of a core that tells spinning from sleeping. Measured: a spinning router gets
# 20-100 % of a core (less on a machine busy with other work), a sleeping one 0-1 %.
SPINNING = 0.05


def _polling(url: str) -> dict[str, object]:
    return dict(httpx.get(url + "/-/router/health", timeout=5).json()["busy_poll"])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sleeping(pid: int) -> bool:
    """The router's event loop blocks in epoll_wait (state S); a spinning loop never does
    (it is running or waiting for a CPU: R)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S"


def _cpu_rate(pid: int, action: Callable[[], object]) -> tuple[float, float]:
    """CPU seconds ``pid`` used while ``action`` ran, and the wall seconds it took."""
    before, started = _cpu_seconds(pid), time.monotonic()
    action()
    return _cpu_seconds(pid) - before, time.monotonic() - started


@pytest.mark.parametrize("flag", ["--busy-poll", "--no-busy-poll"])
def test_router_process_spins_while_a_request_is_in_flight_and_sleeps_when_idle(
    tmp_path: Path, flag: str
) -> None:
    """CPU of the router process: a 2 s backend answer keeps a busy-polling router
    spinning (a share of a core); without it, or once idle, it uses almost none. The
    threshold sits far from both (SPINNING), and idleness is waited for (the loop seen
    blocked in epoll_wait), not slept into."""
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
                answer = httpx.post(router.url + "/invocations", content=b"{}", timeout=30)
                assert answer.status_code == 200
                assert answer.headers["x-deployer-backend"] == "slow"

            def idle_for_a_second() -> tuple[float, float]:
                wait_until(lambda: _sleeping(pid), message="the router loop asleep")
                return _cpu_rate(pid, lambda: time.sleep(1.0))

            idle_before, idle_before_wall = idle_for_a_second()
            waiting, waited = _cpu_rate(pid, one_request)
            # once the answer is out it goes back to sleep (after idle_ms): waited for
            idle_after, idle_after_wall = idle_for_a_second()
            state = _polling(router.url)
        finally:
            assert router.stop() == 0
    finally:
        slow.close()
    idle_rate = max(idle_before / idle_before_wall, idle_after / idle_after_wall)
    rate = waiting / waited
    assert idle_rate < SPINNING, f"an idle router used {idle_rate:.0%} of a core"
    if flag == "--busy-poll":
        assert state["enabled"] is True and int(str(state["spins"])) > 0
        assert rate > SPINNING, f"busy polling used only {rate:.0%} of a core"
    else:
        assert state == {"enabled": False, "spinning": False, "spins": 0}
        assert rate < SPINNING, f"a sleeping router used {rate:.0%} of a core"


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
