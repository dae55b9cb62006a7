"""Run a container from our image on 127.0.0.1 and wait for it: shared by check and local."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from deployer.errors import DeployerError

# The Kubernetes restricted profile, as docker run options.
RESTRICTED = {
    "user": "12345:12345",
    "read_only": True,
    "tmpfs": {"/tmp": "rw,size=64m"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}


class ContainerFailed(DeployerError):
    """The container exited or never became healthy; carries its last log lines."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass
class RunningContainer:
    """A started container and the loopback URL of its serving port."""

    container: Any
    url: str
    started: float = field(default_factory=time.monotonic)

    def logs(self, lines: int = 20) -> str:
        try:
            raw = self.container.logs(tail=lines)
        except Exception:  # the container may already be gone
            return "(no logs)"
        return raw.decode("utf-8", "replace").rstrip() or "(no output)"

    def remove(self) -> None:
        with contextlib.suppress(Exception):  # already gone is fine
            self.container.remove(force=True)


def run_container(
    client: Any,
    image: str,
    *,
    container_port: int = 8080,
    host_port: int | None = None,
    command: list[str] | None = None,
    environment: dict[str, str] | None = None,
    name: str | None = None,
    labels: dict[str, str] | None = None,
    restricted: bool = False,
    network: str | None = None,
    restart: bool = False,
    tmpfs: dict[str, str] | None = None,
    user: str | None = None,
    volumes: dict[str, dict[str, str]] | None = None,
) -> RunningContainer:
    """Start ``image`` detached, publishing ``container_port`` on 127.0.0.1 only.
    ``tmpfs`` mounts empty folders (path -> options) over the image's own; ``user``
    overrides the image's (non-root) user, e.g. ``"0"`` as SageMaker runs it; ``volumes``
    bind-mounts host folders (docker SDK form: host path -> {"bind", "mode"})."""
    port = host_port or free_port()
    options: dict[str, Any] = dict(RESTRICTED) if restricted else {}
    if user is not None:
        options["user"] = user
    if tmpfs:
        options["tmpfs"] = {**options.get("tmpfs", {}), **tmpfs}
    if network:
        options["network"] = network
    if restart:
        options["restart_policy"] = {"Name": "unless-stopped"}
    if volumes:
        options["volumes"] = volumes
    container = client.containers.run(
        image,
        command=command,
        detach=True,
        name=name or f"deployer-check-{uuid.uuid4().hex[:8]}",
        environment=environment or {},
        ports={f"{container_port}/tcp": ("127.0.0.1", port)},
        labels=labels or {},
        **options,
    )
    return RunningContainer(container, f"http://127.0.0.1:{port}")


def wait_healthy(running: RunningContainer, path: str, timeout: float) -> float:
    """Poll ``path`` until it answers 200; return the seconds taken. Fails fast on a crash."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            running.container.reload()
            state = running.container.attrs["State"]
            crashed = state.get("Restarting") or running.container.attrs.get("RestartCount", 0) > 0
            if running.container.status in ("exited", "dead") or crashed:
                raise ContainerFailed(
                    f"container {running.container.name} exited with code {state['ExitCode']} "
                    f"before it was healthy; its last log lines:\n{_indent(running.logs())}"
                )
            try:
                if http.get(running.url + path).status_code == 200:
                    return time.monotonic() - running.started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise ContainerFailed(
        f"container {running.container.name} was not healthy on {path} after {timeout:.0f}s; "
        f"its last log lines:\n{_indent(running.logs())}"
    )


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
