"""A pytest plugin that fails the run when the suite leaves something behind.

Loaded for every test folder by the root conftest.py. At the start of the session it
notes what already exists; when the session ends (every fixture torn down) it compares:

- Docker containers, networks, volumes and image tags that appeared during the run;
- processes started by this pytest process (its descendants) that are still alive;
- threads of this process that are still running;
- asyncio tasks destroyed while pending (``Task was destroyed but it is pending!``),
  which means some event loop was closed without cancelling and awaiting its tasks.

Anything found is listed in the terminal summary and the exit status becomes 1, even
when every test passed. Set ``DEPLOYER_LEFTOVERS=report`` to list without failing
(while debugging a single test); ``DEPLOYER_LEFTOVERS_SETTLE`` is how many seconds a
process or thread may still take to exit (default 10).

It also undoes, after each test, what the test did to ``os.environ``
(``_restore_environment``): a cloud SDK that sets a variable in-process (azure-ai-ml's
``MLClient`` sets ``AZUREML_CURRENT_CLOUD``) would otherwise reach every later test and
every subprocess they start, so what passes would depend on the order of the tests.
Wider fixtures may set process-wide variables on purpose (gRPC reads its CA path once
per process), so what they set stays.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# how long a process or thread may take to finish exiting
SETTLE_SECONDS = float(os.environ.get("DEPLOYER_LEFTOVERS_SETTLE", "10"))
PENDING_TASK = "Task was destroyed but it is pending"


@dataclass
class DockerState:
    """The ids and tags that exist on the engine at one moment."""

    containers: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)
    volumes: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)


def _docker_client() -> Any:
    """A client for the local engine, or None when there is no engine (no import cost
    when Docker is not installed)."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception:
        return None


def docker_state(client: Any) -> DockerState:
    containers = {c.id: c.name for c in client.containers.list(all=True, ignore_removed=True)}
    networks = {n.id: n.name for n in client.networks.list()}
    volumes = {v.name for v in client.volumes.list()}
    tags = {tag for image in client.images.list() for tag in image.tags}
    return DockerState(containers, networks, volumes, tags)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> dict[int, str]:
    """Live (not zombie) descendants of ``pid`` with their command lines (Linux /proc)."""
    found: dict[int, str] = {}
    queue = _children(pid)
    while queue:
        child = queue.pop()
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if state != "Z":
            found[child] = command.decode(errors="replace").strip()
        queue.extend(_children(child))
    return found


def _live_descendants() -> list[str]:
    return [f"process {pid}: {command}" for pid, command in descendants(os.getpid()).items()]


def _running_threads(known: set[int]) -> list[str]:
    return [
        f"thread {t.name!r} (target {getattr(t, '_target', None)!r})"
        for t in threading.enumerate()
        if t is not threading.main_thread()
        and t.ident not in known
        and t.is_alive()
        # threads started outside Python (gRPC's, for example) that once called into it
        and not isinstance(t, threading._DummyThread)
    ]


class PendingTaskRecorder(logging.Handler):
    """Keeps every asyncio log record about a task destroyed while pending."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if PENDING_TASK in message:
            self.messages.append(message.splitlines()[0][:300])


def settle(check: Callable[[], list[str]], seconds: float = SETTLE_SECONDS) -> list[str]:
    """``check()`` until it finds nothing, or what it still finds after ``seconds``."""
    deadline = time.monotonic() + seconds
    found = check()
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = check()
    return found


def _environment() -> dict[str, str]:
    """``os.environ`` without the variable pytest itself keeps (PYTEST_CURRENT_TEST)."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Undo whatever a test (or code it ran in-process) did to ``os.environ``.

    Function-scoped, so it is set up after the wider fixtures: what they set stays."""
    saved = _environment()
    yield
    if _environment() != saved:
        for name in set(_environment()) - set(saved):
            del os.environ[name]
        os.environ.update(saved)


class Leftovers:
    """The plugin object (one per session)."""

    def __init__(self) -> None:
        self.client: Any = None
        self.before = DockerState()
        self.threads_before: set[int] = set()
        self.recorder = PendingTaskRecorder()
        self.found: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        logging.getLogger("asyncio").addHandler(self.recorder)
        self.threads_before = {t.ident for t in threading.enumerate() if t.ident is not None}
        self.client = _docker_client()
        if self.client is not None:
            self.before = docker_state(self.client)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if session.config.option.collectonly:
            return
        gc.collect()  # pending tasks of dropped loops are reported when collected
        self.found = [f"asyncio: {m}" for m in self.recorder.messages]
        self.found += settle(_live_descendants)
        self.found += settle(lambda: _running_threads(self.threads_before))
        if self.client is not None:
            self.found += settle(self._docker_leftovers, seconds=2)
        logging.getLogger("asyncio").removeHandler(self.recorder)
        if self.found and os.environ.get("DEPLOYER_LEFTOVERS") != "report":
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _docker_leftovers(self) -> list[str]:
        now = docker_state(self.client)
        found = [
            f"docker container {name} ({cid[:12]})"
            for cid, name in now.containers.items()
            if cid not in self.before.containers
        ]
        found += [
            f"docker network {name} ({nid[:12]})"
            for nid, name in now.networks.items()
            if nid not in self.before.networks
        ]
        found += [f"docker volume {v}" for v in sorted(now.volumes - self.before.volumes)]
        found += [f"docker image tag {t}" for t in sorted(now.tags - self.before.tags)]
        return found

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.found:
            return
        terminalreporter.section("left behind by the test run", sep="=", red=True)
        for line in self.found:
            terminalreporter.write_line(line)
        terminalreporter.write_line("Every test must stop what it starts (see tests/leftovers.py).")


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("deployer-leftovers"):
        config.pluginmanager.register(Leftovers(), "deployer-leftovers")
