"""The ``local`` provider: the image on this machine's Docker engine, behind a stable port.

Layout for project P and target T (both in every name and label):
- network ``P-T``; a front container ``P-T`` (deployer/local/front.py) published on
  127.0.0.1:PORT, forwarding to the live model container; its upstream is kept on the
  named volume ``P-T-front-state``, so a front Docker restarts serves again at once;
- model containers ``P-T-VERSION``, each on the network (and on an ephemeral loopback
  port for health checks), labelled with the version they replaced
  (``deployer-previous``). That previous one is kept stopped for ``rollback``.

A new version starts beside the old one; when it is healthy the front switches to it and
only then is the old one stopped, so a client calling all along sees no failed request.

The platform is the source of truth (deployer/local/inventory.py): ``status`` reports the
container the front really forwards to, and every command starts from what is there, so
after a crash at any step (``DEPLOYER_FAULT``, deployer/local/faults.py) the same command
run again converges: the front ends on the wanted version, the version it replaced is
kept, every other model container of the target is removed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from deployer.local.batch import BatchJob, BatchSpec, LocalBatch
from deployer.local.canary import ContainerScraper, reported, step_reader
from deployer.local.capture import (
    CapturedRecord,
    CaptureReader,
    CaptureSpec,
    capture_mount,
    mounted_folders,
    no_capture,
)
from deployer.local.faults import boundary
from deployer.local.front_container import FrontContainer
from deployer.local.inventory import (
    LABEL_PREVIOUS,
    LABEL_PROJECT,
    LABEL_ROLE,
    LABEL_TARGET,
    LABEL_VERSION,
    SERVED_POLICY,
    Snapshot,
    read_front,
    version_of,
)
from deployer.local.loopback import client as loopback_client
from deployer.providers import (
    ANNOTATION_KEYS,
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
    routes,
    run_container,
    wait_healthy,
)
from deployer.providers import live as gates

P = ParamSpec("P")
R = TypeVar("R")

DRAIN_SECONDS = 1.0
RESTART_POLICY = {"Name": SERVED_POLICY}


def _platform_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Docker's own errors (a container gone meanwhile, a refused call) as DeployerError."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DeployerError:
            raise
        except Exception as exc:
            if not type(exc).__module__.startswith("docker"):
                raise
            raise DeployerError(
                f"the Docker engine refused a step: {exc}",
                hint="run the same command again: it starts from what is there now",
            ) from None

    return wrapper


class LocalOptions(BaseModel):
    """Options of a ``provider: local`` target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = "local"
    port: int = Field(default=8080, ge=1, le=65535, description="port on 127.0.0.1")
    restricted: bool = Field(default=True, description="run as non-root, read-only root fs")
    startup_timeout: float = Field(default=240, gt=0, description="seconds to become healthy")
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="largest request body the front takes (413)"
    )


class LocalProvider:
    """Deploys to the local Docker engine (see the module docstring)."""

    name: ClassVar[str] = "local"
    managed: ClassVar[bool] = False  # the router checks its health route itself
    default_router_auth: ClassVar[str | None] = None
    # a local container starts within startup_timeout's default (the push timeout's step)
    rollout_allowance_seconds: ClassVar[float] = 300.0

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

    @property
    def http(self) -> httpx.Client:
        """The loopback client (deployer.local.loopback): connections kept."""
        return loopback_client()

    @property
    def front(self) -> FrontContainer:
        return FrontContainer(self.client, self.prefix, self.options.port, self._labels("front"))

    def _labels(self, role: str, version: str | None = None) -> dict[str, str]:
        labels = {LABEL_PROJECT: self.project, LABEL_TARGET: self.target.name, LABEL_ROLE: role}
        if version:
            labels[LABEL_VERSION] = version
        return labels

    def _containers(self, role: str) -> list[Any]:
        filters = {"label": [f"{k}={v}" for k, v in self._labels(role).items()]}
        return list(self.client.containers.list(all=True, filters=filters))

    def _snapshot(self) -> Snapshot:
        """Read the platform: the front, the model containers, the front's real upstream."""
        fronts = self._containers("front")
        front = fronts[0] if fronts else None
        answers, upstream, canary = (
            read_front(self._front_url()) if front is not None else (False, None, None)
        )
        return Snapshot(front, self._containers("model"), answers, upstream, canary)

    def _front_url(self) -> str:
        return f"http://127.0.0.1:{self.options.port}"

    def _ensure_network(self) -> None:
        if not self.client.networks.list(names=[self.prefix]):
            self.client.networks.create(self.prefix, labels=self._labels("network"))

    def _ensure_front(self, progress: Progress) -> None:
        info = self.info

        def image() -> str:
            from deployer.local.front_image import ensure_front_image

            return ensure_front_image(
                self.client, info.base_image, info.platform, info.python, progress
            )

        command = ["serve", "--port", "8080", "--max-body", str(self.options.max_body_bytes)]
        self._ensure_network()
        self.front.ensure(image, command, progress)
        boundary("push:front-ready")

    def _start_model(
        self,
        image_ref: str,
        version: str,
        previous: str | None,
        annotations: Mapping[str, str] | None = None,
        capture_spec: CaptureSpec | None = None,
    ) -> RunningContainer:
        name = f"{self.prefix}-{version}"
        mount = capture_mount(capture_spec, self._root, self.target.name, version)
        for stale in self.client.containers.list(all=True, filters={"name": f"^{name}$"}):
            stale.remove(force=True)
        labels = {**(annotations or {}), **self._labels("model", version)}
        if previous and previous != version:
            labels[LABEL_PREVIOUS] = previous  # what it replaces: rollback's target
        return run_container(
            self.client,
            image_ref,
            command=["serve"],
            name=name,
            labels=labels,
            restricted=self.options.restricted,
            network=self.prefix,
            environment=mount.environment,
            volumes=mount.volumes,
            user=mount.user,
        )  # restart policy only once it serves: a crash at start must show its real exit code

    def _activate(self, running: RunningContainer, step: str, progress: Progress) -> None:
        """Wait for ``running`` to be healthy, then switch the front to it."""
        try:
            seconds = wait_healthy(running, routes.SAGEMAKER_PING, self.options.startup_timeout)
        except ContainerFailed:
            if step == "push":
                running.remove()
            raise
        boundary(f"{step}:model-healthy")
        progress(f"{running.container.name} healthy after {seconds:.1f}s; switching the front")
        self.front.switch(f"http://{running.container.name}:8080")
        running.container.update(restart_policy=RESTART_POLICY)  # marks it as having served
        boundary(f"{step}:switched")

    def _settle(self, serving: Any, keep: Any | None, step: str, progress: Progress) -> None:
        """Stop ``keep`` (the version kept for rollback), remove every other model container
        that does not serve: what a crash left behind is cleaned here too."""
        if keep is not None and keep.id != serving.id:
            keep.reload()
            if keep.status == "running":
                time.sleep(DRAIN_SECONDS)  # requests already sent to it finish first
                keep.stop(timeout=30)
                progress(f"stopped {keep.name} (kept for rollback)")
        boundary(f"{step}:old-stopped")
        for container in self._containers("model"):
            if container.id not in (serving.id, keep.id if keep is not None else None):
                container.remove(force=True)
                progress(f"removed {container.name} (neither serving nor kept for rollback)")
        boundary(f"{step}:pruned")

    # -- the provider protocol ---------------------------------------------------------

    @_platform_errors
    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        """What a push would change; every strategy runs here (no ``problems``)."""
        changes: list[Change] = []
        snapshot = self._snapshot()
        if not snapshot.front_answers:
            changes.append(
                Change("create", f"container {self.prefix}", f"front on {self._front_url()}")
            )
        live = snapshot.serving()
        current = version_of(live)
        name = f"container {self.prefix}-{release.version}"
        keep = snapshot.previous(live)
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
            keep = live
        for container in snapshot.models:
            if container not in (live, keep) and version_of(container) != release.version:
                changes.append(
                    Change("delete", f"container {container.name}", "neither serving nor kept")
                )
        notes = local_gpu_notes(release)
        canary = strategy is not None and strategy.kind != "all-at-once"
        if canary and strategy is not None and live is not None and current != release.version:
            notes.append(
                f"{strategy}: the front sends {strategy.percent}% of the requests to "
                f"{release.version} while each step bakes, then switches to it"
            )
        return Plan(self.target.name, changes, notes=notes)

    def publish(self, image: Image, progress: Progress) -> str:
        """The local engine already has the image: its id is the pullable ref."""
        return image.id

    @_platform_errors
    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        """Converge on ``release``: whatever a crash left, the front ends on the new
        version, the one it replaced is kept stopped, and nothing else is left."""
        self._ensure_front(progress)
        snapshot = self._drop_canary(self._snapshot(), progress)
        live = snapshot.serving()
        previous = version_of(live)
        if strategy.kind != "all-at-once":
            if live is not None and previous != release.version and self._serves(live):
                return self._start_canary(release, image_ref, strategy, live, progress)
            why = (
                "nothing serves yet"
                if live is None
                else "this version already serves"
                if previous == release.version
                else f"{live.name} does not answer through the front"
            )
            progress(f"{strategy} needs a live version to compare with ({why}): all at once")
        if previous == release.version and self._serves(live):
            progress(f"{self.target.name}: version {release.version} is already live")
            self._settle(live, snapshot.previous(live), "push", progress)
            return Deployment(self.target.name, release.version, previous, changed=False)
        keep = snapshot.previous(live) if previous == release.version else live
        progress(f"starting {self.prefix}-{release.version}")
        running = self._start_model(
            image_ref, release.version, version_of(keep), release.annotations, release.capture
        )
        boundary("push:model-started")
        self._activate(running, "push", progress)
        self._settle(running.container, keep, "push", progress)
        return Deployment(self.target.name, release.version, previous, changed=True)

    # -- canary -------------------------------------------------------------------------

    def _start_canary(
        self, release: Release, image_ref: str, strategy: Strategy, live: Any, progress: Progress
    ) -> Deployment:
        """Start the new version beside ``live``; once healthy, the front sends it its share."""
        previous = version_of(live)
        progress(f"starting {self.prefix}-{release.version} as a canary beside {live.name}")
        running = self._start_model(image_ref, release.version, previous, None, release.capture)
        boundary("push:model-started")
        try:
            seconds = wait_healthy(running, routes.SAGEMAKER_PING, self.options.startup_timeout)
        except ContainerFailed:
            running.remove()
            raise
        boundary("push:model-healthy")
        progress(f"{running.container.name} healthy after {seconds:.1f}s")
        self._split(live, running.container, strategy.percent, progress)
        boundary("push:canary")
        details: dict[str, Any] = {
            "strategy": strategy.kind,
            "percent": strategy.percent,
            "bake_seconds": strategy.bake_seconds,
            "canary": running.container.name,
            "old": live.name,
        }
        if strategy.live is not None:
            details["live"] = asdict(strategy.live)
        return Deployment(self.target.name, release.version, previous, True, details)

    def _split(self, old: Any, new: Any, percent: int, progress: Progress) -> None:
        self.front.switch(f"http://{old.name}:8080", f"http://{new.name}:8080", percent)
        progress(f"front: {percent}% of the requests to {new.name}, the rest to {old.name}")

    def _drop_canary(self, snapshot: Snapshot, progress: Progress) -> Snapshot:
        """A canary left by an interrupted push: the front back to the old version alone,
        the canary removed; the snapshot read again."""
        if snapshot.canary is None:
            return snapshot
        live = snapshot.serving()
        if live is not None:
            self.front.switch(f"http://{live.name}:8080")
        canary = snapshot.named(snapshot.canary[0])
        if canary is not None and canary is not live:
            canary.remove(force=True)
        progress(f"removed the canary {snapshot.canary[0]} left by an interrupted push")
        return self._snapshot()

    @_platform_errors
    def _bake_canary(self, deployment: Deployment, progress: Progress) -> Status:
        """Bake each step (comparing both containers' /metrics under live rules), then
        promote the canary, or roll it back with the live gate's reason."""
        details = deployment.details
        snapshot = self._snapshot()
        old, new = snapshot.named(details["old"]), snapshot.named(details["canary"])
        if old is None or new is None or snapshot.canary is None:
            return Status(
                self.target.name,
                "failed",
                version_of(snapshot.serving()),
                self._front_url(),
                "the canary was interrupted (a container or the front's split is gone); "
                "push again to converge",
            )
        percent = int(details["percent"])
        steps = [percent] if details["strategy"] == "canary" else list(range(percent, 100, percent))
        rules = gates.LiveRules(**details["live"]) if details.get("live") else None
        seconds = float(details.get("bake_seconds") or 0)
        for index, step in enumerate(steps):
            if index:
                self._split(old, new, step, progress)
            read = None
            if rules is not None:
                read = reported(
                    step_reader(
                        ContainerScraper(_loopback_url(old), old.name),
                        ContainerScraper(_loopback_url(new), new.name),
                    ),
                    rules,
                    progress,
                )
                progress(f"baking {new.name} at {step}% for {seconds:g}s (live gate)")
            try:
                gates.bake(seconds, read, rules, time.sleep)
            except gates.LiveGateFailed as exc:
                return self._canary_rolled_back(old, new, exc.verdict, progress)
        progress(f"promoting {new.name}: the front forwards to it alone")
        self.front.switch(f"http://{new.name}:8080")
        new.update(restart_policy=RESTART_POLICY)  # marks it as having served
        boundary("push:switched")
        self._settle(new, old, "push", progress)
        return self.status()

    def _canary_rolled_back(
        self, old: Any, new: Any, verdict: gates.Verdict, progress: Progress
    ) -> Status:
        """The front back to ``old`` alone, the canary removed, the reason said."""
        self.front.switch(f"http://{old.name}:8080")
        new.remove(force=True)
        progress(f"removed the canary {new.name}: {old.name} alone serves")
        version = version_of(old)
        return Status(
            self.target.name,
            "failed",
            version,
            self._front_url(),
            f"live gate: {verdict.reason}; rolled back: {version} keeps serving",
            {"rolled_back": True, "live_gate": verdict.to_dict(), "container": old.name},
        )

    def _serves(self, container: Any) -> bool:
        """Whether the front answers /ping through ``container`` right now."""
        try:
            ping = self.http.get(self._front_url() + routes.SAGEMAKER_PING, timeout=2.0)
        except httpx.HTTPError:
            return False
        return ping.status_code == 200 and _backend(ping) == container.name

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        """``deploy`` already waited for health before switching; confirm through the front.
        A canary is baked here, then promoted or rolled back."""
        if deployment.details.get("strategy") in ("canary", "linear"):
            return self._bake_canary(deployment, progress)
        deadline = time.monotonic() + timeout
        status = self.status()
        while not status.healthy and time.monotonic() < deadline:
            time.sleep(0.2)
            status = self.status()
        return status

    @_platform_errors
    def status(self) -> Status:
        """What really serves: the container the front forwards /ping to, by its labels."""
        snapshot = self._snapshot()
        if snapshot.front is None and not snapshot.models:
            return Status(self.target.name, "absent", reason="nothing deployed")
        serving = snapshot.serving()
        version = version_of(serving)
        details: dict[str, Any] = {
            "container": serving.name if serving is not None else None,
            "previous_version": version_of(snapshot.previous(serving)),
            "annotations": _annotations(serving),
        }
        if not snapshot.front_running:
            reason = "the front container is not running"
            return Status(self.target.name, "unhealthy", version, None, reason, details)
        url = self._front_url()
        try:
            ping = self.http.get(url + routes.SAGEMAKER_PING, timeout=2.0)
        except httpx.HTTPError as exc:
            reason = f"the front does not answer: {type(exc).__name__}"
            return Status(
                self.target.name, "unhealthy", version, self._front_url(), reason, details
            )
        answered = snapshot.named(_backend(ping))
        if answered is not None and snapshot.canary is None:
            version, details["container"] = version_of(answered), answered.name
            details["annotations"] = _annotations(answered)
        if ping.status_code != 200:
            reason = f"/ping through the front answered {ping.status_code}: {ping.text[:200]}"
            return Status(
                self.target.name, "unhealthy", version, self._front_url(), reason, details
            )
        canary = snapshot.named(snapshot.canary[0]) if snapshot.canary else None
        if snapshot.canary is not None:
            percent = snapshot.canary[1]
            details["canary"] = {
                "container": snapshot.canary[0],
                "version": version_of(canary),
                "percent": percent,
            }
            reason = (
                f"canary {version_of(canary)} takes {percent}% of the requests beside {version}"
            )
            return Status(self.target.name, "updating", version, url, reason, details)
        return Status(self.target.name, "healthy", version, url, details=details)

    @_platform_errors
    def serving_invoker(self) -> Callable[[bytes, str, str | None], Invocation]:
        """``invoke`` straight to the serving version's container (its loopback port), not
        through the front: no canary's share, no relay (batch --endpoint)."""
        serving = self._snapshot().serving()
        if serving is None:
            raise DeployerError("no version is being served", hint="deployer push --to local")
        url = _loopback_url(serving)

        def invoke(body: bytes, content_type: str, accept: str | None = None) -> Invocation:
            return self._post(url, body, content_type, accept)

        return invoke

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        return self._post(self._front_url(), body, content_type, accept)

    def _post(self, base: str, body: bytes, content_type: str, accept: str | None) -> Invocation:
        """POST /invocations at ``base`` (the front, or a model container)."""
        headers = {"content-type": content_type}
        if accept:
            headers["accept"] = accept
        url = base + routes.SAGEMAKER_INVOCATIONS
        try:
            try:
                response = self.http.post(url, content=body, headers=headers)
            except httpx.RemoteProtocolError:  # a kept connection the server closed: once more
                response = self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeployerError(
                f"could not reach {base}: {exc}", hint="deployer status --to local"
            ) from None
        return Invocation(
            response.status_code, response.content, response.headers.get("content-type", "")
        )

    @_platform_errors
    def rollback(self, progress: Progress) -> Deployment:
        """Start the version the serving one replaced again and switch back to it."""
        self._ensure_front(progress)
        snapshot = self._snapshot()
        if snapshot.canary is not None:  # an interrupted canary: the old version is live
            self._drop_canary(snapshot, progress)
            live = snapshot.serving()
            version = version_of(live) or ""
            return Deployment(self.target.name, version, version, changed=True)
        live = snapshot.serving()
        target = snapshot.previous(live)
        if target is None:
            raise UsageError(f"{self.target.name} has no previous version to roll back to")
        version = version_of(target) or ""
        progress(f"starting the previous version {version}")
        target.reload()
        if target.status != "running":
            target.start()
        boundary("rollback:previous-started")
        self._activate(RunningContainer(target, _loopback_url(target)), "rollback", progress)
        assert live is not None  # a previous version exists only beside a serving one
        self._settle(target, live, "rollback", progress)
        return Deployment(self.target.name, version, version_of(live), changed=True)

    @_platform_errors
    def destroy(self, progress: Progress) -> list[str]:
        removed = self.front.remove()
        boundary("destroy:front-removed")
        for container in self._containers("model"):
            container.remove(force=True)
            removed.append(f"container {container.name}")
            boundary("destroy:model-removed")
        removed += self.front.remove_volume()
        boundary("destroy:volume-removed")
        for network in self.client.networks.list(names=[self.prefix]):
            network.remove()
            removed.append(f"network {network.name}")
        boundary("destroy:network-removed")
        for name in removed:
            progress(f"removed {name}")
        return removed

    @_platform_errors
    def captured(self, since: datetime | None = None) -> Iterator[CapturedRecord]:
        """The requests this target's containers captured (deployer/local/capture.py)."""
        folders = mounted_folders(self._containers("model"))
        default = self._root / ".deployer" / "capture" / self.target.name
        if default.is_dir() and default.resolve() not in folders:
            folders.append(default.resolve())
        if not folders:
            raise no_capture(self.target.name)
        return CaptureReader(folders).records(since)

    @property
    def _root(self) -> Path:
        return Path(self.info.root or ".")

    def route(self) -> Backend:
        return Backend(self.target.name, self.name, self._front_url())

    # -- batch (RunsBatch): the image runs the batch runner (deployer/local/batch.py) ------

    @property
    def batch(self) -> LocalBatch:
        return LocalBatch(lambda: self.client, self.prefix, self.target.name, self._labels("batch"))

    @_platform_errors
    def batch_submit(
        self, release: Release, image_ref: str, spec: BatchSpec, progress: Progress
    ) -> BatchJob:
        return self.batch.submit(release, image_ref, spec, progress)

    @_platform_errors
    def batch_status(self, job_id: str) -> BatchJob:
        return self.batch.status(job_id)

    def batch_logs(self, job_id: str) -> Iterator[str]:
        return self.batch.logs(job_id)

    @_platform_errors
    def batch_cancel(self, job_id: str) -> BatchJob:
        return self.batch.cancel(job_id)


def _backend(response: httpx.Response) -> str | None:
    """The model container that answered through the front (its x-deployer-backend)."""
    return response.headers.get("x-deployer-backend")


def _loopback_url(container: Any) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}"


def local_gpu_notes(release: Release) -> list[str]:
    """A CUDA image here runs without a GPU (containers start without ``--gpus``)."""
    if release.accelerator != "cuda":
        return []
    return [
        "a CUDA image: the local target starts containers without a GPU (no --gpus), "
        "so it serves on the CPU here"
    ]


def _annotations(container: Any) -> dict[str, str]:
    """The release annotations among a container's labels ({} for none or no container)."""
    labels = (container.labels or {}) if container is not None else {}
    return {key: value for key, value in labels.items() if key in ANNOTATION_KEYS}
