"""The ``local`` provider: the image on this machine's Docker engine, behind a stable port.

Layout for project P and target T (both in every name and label):
- network ``P-T``; a front container ``P-T`` (deployer/local/front.py) published on
  127.0.0.1:PORT, forwarding to the live model container;
- model containers ``P-T-VERSION``, each on the network (and on an ephemeral loopback
  port for health checks). The previous one is kept stopped for ``rollback``.

A new version starts beside the old one; when it is healthy the front switches to it and
only then is the old one stopped, so a client calling all along sees no failed request.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from deployer.providers import (
    Backend,
    Change,
    ContainerFailed,
    DeployerError,
    Deployment,
    Image,
    Invocation,
    Plan,
    Progress,
    ProjectInfo,
    Release,
    RunningContainer,
    Status,
    Strategy,
    Target,
    UsageError,
    parse_options,
    port_in_use,
    routes,
    run_container,
    wait_healthy,
)

LABEL_PROJECT = "deployer-project"
LABEL_TARGET = "deployer-target"
LABEL_ROLE = "deployer-role"
LABEL_VERSION = "deployer-version"
FRONT_HEALTH = "/-/front/health"
DRAIN_SECONDS = 1.0
RESTART_POLICY = {"Name": "unless-stopped"}


class LocalOptions(BaseModel):
    """Options of a ``provider: local`` target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = "local"
    port: int = Field(default=8080, ge=1, le=65535, description="port on 127.0.0.1")
    restricted: bool = Field(default=True, description="run as non-root, read-only root fs")
    startup_timeout: float = Field(default=240, gt=0, description="seconds to become healthy")


class LocalProvider:
    """Deploys to the local Docker engine (see the module docstring)."""

    name: ClassVar[str] = "local"
    managed: ClassVar[bool] = False  # the router checks its health route itself
    default_router_auth: ClassVar[str | None] = None

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        self.options = parse_options(LocalOptions, target)
        self.target = target
        self.info = project
        self.project = project.name
        self.prefix = f"{project.name}-{target.name}"
        self._client: Any = None

    # -- docker plumbing ---------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from deployer.providers import docker_client

            self._client = docker_client()
        return self._client

    def _labels(self, role: str, version: str | None = None) -> dict[str, str]:
        labels = {LABEL_PROJECT: self.project, LABEL_TARGET: self.target.name, LABEL_ROLE: role}
        if version:
            labels[LABEL_VERSION] = version
        return labels

    def _containers(self, role: str) -> list[Any]:
        filters = {"label": [f"{k}={v}" for k, v in self._labels(role).items()]}
        return list(self.client.containers.list(all=True, filters=filters))

    def _front(self) -> Any | None:
        fronts = self._containers("front")
        return fronts[0] if fronts else None

    def _live_model(self) -> Any | None:
        """The model container the front forwards to (running, newest)."""
        running = [c for c in self._containers("model") if c.status == "running"]
        running.sort(key=lambda c: c.attrs["Created"], reverse=True)
        return running[0] if running else None

    def _front_url(self) -> str:
        return f"http://127.0.0.1:{self.options.port}"

    def _ensure_network(self) -> None:
        if not self.client.networks.list(names=[self.prefix]):
            self.client.networks.create(self.prefix, labels=self._labels("network"))

    def _ensure_front(self, progress: Progress) -> None:
        front = self._front()
        if front is not None and front.status == "running":
            return
        if front is not None:
            front.remove(force=True)
        if port_in_use(self.options.port):
            raise UsageError(
                f"port {self.options.port} on 127.0.0.1 is already in use",
                hint=f"stop what listens there, or set targets.{self.target.name}.port",
            )
        from deployer.local.front_image import ensure_front_image

        info = self.info
        router = ensure_front_image(
            self.client, info.base_image, info.platform, info.python, progress
        )
        progress(f"starting the front {self.prefix} on {self._front_url()}")
        running = run_container(
            self.client,
            router,
            host_port=self.options.port,
            command=["serve", "--port", "8080"],
            name=self.prefix,
            labels=self._labels("front"),
            restricted=True,
            network=self.prefix,
            restart=True,
        )
        wait_healthy(running, FRONT_HEALTH, 60)

    def _switch(self, url: str) -> None:
        front = self._front()
        if front is None:
            raise DeployerError(f"the front container {self.prefix} is gone")
        result = front.exec_run(["python", "-m", "deployer.local.front", "switch", url])
        if result.exit_code != 0:
            raise DeployerError(
                f"could not switch the front to {url}: {result.output.decode(errors='replace')}"
            )

    def _start_model(self, image_ref: str, version: str) -> RunningContainer:
        name = f"{self.prefix}-{version}"
        for stale in self.client.containers.list(all=True, filters={"name": f"^{name}$"}):
            stale.remove(force=True)
        return run_container(
            self.client,
            image_ref,
            command=["serve"],
            name=name,
            labels=self._labels("model", version),
            restricted=self.options.restricted,
            network=self.prefix,
        )  # restart policy only once healthy: a crash at start must show its real exit code

    def _activate(
        self, running: RunningContainer, previous: Any | None, progress: Progress
    ) -> None:
        """Wait for ``running`` to be healthy, switch the front, stop ``previous``."""
        try:
            seconds = wait_healthy(running, routes.SAGEMAKER_PING, self.options.startup_timeout)
        except ContainerFailed:
            running.remove()
            raise
        progress(f"{running.container.name} healthy after {seconds:.1f}s; switching the front")
        self._switch(f"http://{running.container.name}:8080")
        running.container.update(restart_policy=RESTART_POLICY)
        if previous is not None:
            time.sleep(DRAIN_SECONDS)  # requests already sent to the old one finish first
            previous.stop(timeout=30)
        self._prune_stopped(keep=previous)

    def _prune_stopped(self, keep: Any | None) -> None:
        for container in self._containers("model"):
            container.reload()
            if container.status != "running" and (keep is None or container.id != keep.id):
                container.remove(force=True)

    # -- the provider protocol ---------------------------------------------------------

    def plan(self, release: Release) -> Plan:
        changes: list[Change] = []
        front = self._front()
        if front is None or front.status != "running":
            changes.append(
                Change("create", f"container {self.prefix}", f"front on {self._front_url()}")
            )
        live = self._live_model()
        current = live.labels.get(LABEL_VERSION) if live else None
        name = f"container {self.prefix}-{release.version}"
        if current == release.version:
            changes.append(Change("keep", name, "already serving this version"))
        else:
            changes.append(Change("create", name, f"image {release.image.ref}"))
            if live is not None:
                changes.append(
                    Change(
                        "update",
                        f"container {self.prefix}",
                        f"switch {current} -> {release.version}",
                    )
                )
                changes.append(
                    Change("delete", f"container {live.name}", "stopped, kept for rollback")
                )
        return Plan(self.target.name, changes)

    def publish(self, image: Image, progress: Progress) -> str:
        """The local engine already has the image: its id is the pullable ref."""
        return image.id

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        if strategy.kind != "all-at-once":
            raise UsageError(
                f"the local target supports only all-at-once updates, not {strategy}",
                hint="canary and linear strategies are for the cloud and Kubernetes targets",
            )
        self._ensure_network()
        self._ensure_front(progress)
        live = self._live_model()
        previous = live.labels.get(LABEL_VERSION) if live else None
        if previous == release.version and self.status().healthy:
            progress(f"{self.target.name}: version {release.version} is already live")
            return Deployment(self.target.name, release.version, previous, changed=False)
        progress(f"starting {self.prefix}-{release.version}")
        running = self._start_model(image_ref, release.version)
        self._activate(running, live, progress)
        return Deployment(self.target.name, release.version, previous, changed=True)

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        """``deploy`` already waited for health before switching; confirm through the front."""
        deadline = time.monotonic() + timeout
        status = self.status()
        while not status.healthy and time.monotonic() < deadline:
            time.sleep(0.2)
            status = self.status()
        return status

    def status(self) -> Status:
        front = self._front()
        live = self._live_model()
        if front is None and live is None:
            return Status(self.target.name, "absent", reason="nothing deployed")
        version = live.labels.get(LABEL_VERSION) if live else None
        if front is None or front.status != "running":
            return Status(
                self.target.name, "unhealthy", version, reason="the front container is not running"
            )
        try:
            ping = httpx.get(self._front_url() + routes.SAGEMAKER_PING, timeout=2.0)
        except httpx.HTTPError as exc:
            return Status(
                self.target.name,
                "unhealthy",
                version,
                self._front_url(),
                f"{type(exc).__name__}: {exc}",
            )
        if ping.status_code != 200:
            return Status(
                self.target.name,
                "unhealthy",
                version,
                self._front_url(),
                f"/ping answered {ping.status_code}: {ping.text[:200]}",
            )
        details = {"container": live.name if live else None}
        return Status(self.target.name, "healthy", version, self._front_url(), details=details)

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        headers = {"content-type": content_type}
        if accept:
            headers["accept"] = accept
        try:
            response = httpx.post(
                self._front_url() + routes.SAGEMAKER_INVOCATIONS,
                content=body,
                headers=headers,
                timeout=65.0,
            )
        except httpx.HTTPError as exc:
            raise DeployerError(
                f"could not reach {self._front_url()}: {exc}", hint="deployer status --to local"
            ) from None
        return Invocation(
            response.status_code, response.content, response.headers.get("content-type", "")
        )

    def rollback(self, progress: Progress) -> Deployment:
        """Start the previous (stopped) version again and switch back to it."""
        live = self._live_model()
        stopped = [c for c in self._containers("model") if c.status != "running"]
        if not stopped:
            raise UsageError(f"{self.target.name} has no previous version to roll back to")
        previous = sorted(stopped, key=lambda c: c.attrs["Created"])[-1]
        version = previous.labels.get(LABEL_VERSION, "")
        progress(f"starting the previous version {version}")
        previous.start()
        running = RunningContainer(previous, _loopback_url(previous))
        self._activate(running, live, progress)
        current = live.labels.get(LABEL_VERSION) if live else None
        return Deployment(self.target.name, version, current, changed=True)

    def destroy(self, progress: Progress) -> list[str]:
        removed = []
        for role in ("front", "model"):
            for container in self._containers(role):
                container.remove(force=True)
                removed.append(f"container {container.name}")
        for network in self.client.networks.list(names=[self.prefix]):
            network.remove()
            removed.append(f"network {network.name}")
        for name in removed:
            progress(f"removed {name}")
        return removed

    def route(self) -> Backend:
        return Backend(self.target.name, self.name, self._front_url())


def _loopback_url(container: Any) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}"
