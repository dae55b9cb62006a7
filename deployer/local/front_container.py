"""The front container of one local target: started (or restarted) with its state on a
named volume, so it keeps its upstream across a restart, and switched through ``docker
exec``. The published port is checked the way Docker binds it (SO_REUSEADDR: sockets
left in TIME-WAIT by a dead front do not count as in use), and a bind that still races
is retried.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from deployer.local.loopback import client as loopback_client
from deployer.providers import DeployerError, Progress, UsageError

FRONT_HEALTH = "/-/front/health"
FRONT_PORT = 8080
START_ATTEMPTS = 20
RESTRICTED = {  # the Kubernetes restricted profile, as for the model containers
    "read_only": True,
    "tmpfs": {"/tmp": "rw,size=16m"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}


def port_free(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:``port`` (TIME-WAIT sockets do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_race(exc: Exception) -> bool:
    text = str(exc).lower()
    return "address already in use" in text or "port is already allocated" in text


def wait_running(container: Any, seconds: float = 30.0) -> str:
    """Wait while Docker restarts ``container``; its state once it settled."""
    deadline = time.monotonic() + seconds
    container.reload()
    while container.status == "restarting" and time.monotonic() < deadline:
        time.sleep(0.2)
        container.reload()
    return str(container.status)


class FrontContainer:
    """Creates, restarts and switches the front ``name`` on 127.0.0.1:``port``."""

    def __init__(self, client: Any, name: str, port: int, labels: dict[str, str]) -> None:
        self.client = client
        self.name = name
        self.port = port
        self.labels = labels
        self.volume = f"{name}-front-state"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def find(self) -> Any | None:
        filters = {"label": [f"{k}={v}" for k, v in self.labels.items()]}
        found = self.client.containers.list(all=True, filters=filters)
        return found[0] if found else None

    def ensure(self, image: Any, command: list[str], progress: Progress) -> None:
        """Have the front running and answering: as it is, restarted, or created anew.

        ``image`` is called for the image tag only when the front must be created."""
        front = self.find()
        if front is not None and wait_running(front) in ("exited", "created"):
            progress(f"starting the stopped front {self.name}")
            try:
                front.start()
            except Exception as exc:  # a port taken meanwhile: recreate it below
                progress(f"the front {self.name} did not start ({exc}); recreating it")
        if front is not None and wait_running(front) != "running":
            front.remove(force=True)
            front = None
        if front is None:
            front = self._create(image(), command, progress)
        self._wait_answers(front, 60.0)

    def _wait_answers(self, front: Any, seconds: float) -> None:
        """Until the front answers its health route (Docker may be restarting it)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if loopback_client().get(self.url + FRONT_HEALTH, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            front.reload()
            if front.status in ("exited", "dead"):
                break
            time.sleep(0.2)
        logs = front.logs(tail=20).decode("utf-8", "replace").rstrip() or "(no output)"
        raise DeployerError(
            f"the front {self.name} did not answer on {self.url} ({front.status}); "
            f"its last log lines:\n{logs}"
        )

    def _create(self, tag: str, command: list[str], progress: Progress) -> Any:
        from deployer.local.front_image import STATE_DIR

        if not self._volumes():
            self.client.volumes.create(self.volume, labels=self.labels)
        progress(f"starting the front {self.name} on {self.url}")
        for attempt in range(START_ATTEMPTS):
            if not port_free(self.port):
                raise UsageError(
                    f"port {self.port} on 127.0.0.1 is already in use",
                    hint="stop what listens there, or set the target's port option",
                )
            try:
                return self.client.containers.run(
                    tag,
                    command=command,
                    detach=True,
                    name=self.name,
                    labels=self.labels,
                    ports={f"{FRONT_PORT}/tcp": ("127.0.0.1", self.port)},
                    network=self.name,
                    restart_policy={"Name": "unless-stopped"},
                    volumes={self.volume: {"bind": STATE_DIR, "mode": "rw"}},
                    environment={"DEPLOYER_FRONT_STATE": STATE_DIR},
                    **RESTRICTED,
                )
            except Exception as exc:
                if not _port_race(exc) or attempt == START_ATTEMPTS - 1:
                    raise
                stale = self.find()
                if stale is not None:
                    stale.remove(force=True)
                time.sleep(0.5)  # the port frees when the last socket on it closes
        raise AssertionError("unreachable")

    def switch(self, url: str, canary: str | None = None, percent: int = 0) -> None:
        """Forward to ``url`` (and ``percent`` of the requests to ``canary``)."""
        front = self.find()
        if front is None or wait_running(front) != "running":
            raise DeployerError(
                f"the front container {self.name} is not running",
                hint="run the command again: it starts the front first",
            )
        command = ["python", "-m", "deployer.local.front", "switch", url]
        if canary is not None:
            command += ["--canary", canary, "--percent", str(percent)]
        result = front.exec_run(command)
        if result.exit_code != 0:
            raise DeployerError(
                f"could not switch the front to {url}: {result.output.decode(errors='replace')}"
            )

    def remove(self) -> list[str]:
        removed = []
        front = self.find()
        if front is not None:
            front.remove(force=True)
            removed.append(f"container {self.name}")
        return removed

    def remove_volume(self) -> list[str]:
        removed = []
        for volume in self._volumes():
            volume.remove(force=True)
            removed.append(f"volume {self.volume}")
        return removed

    def _volumes(self) -> list[Any]:
        found = self.client.volumes.list(filters={"name": self.volume})
        return [v for v in found if v.name == self.volume]
