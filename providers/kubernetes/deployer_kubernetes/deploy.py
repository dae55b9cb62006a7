"""Applying, watching, pruning and canarying the objects of one target.

- all-at-once: server-side apply of every object; the Deployment's RollingUpdate (no pod
  unavailable, 25% surge) replaces the pods; watched like ``kubectl rollout status``.
- canary:N: a second Deployment ``NAME-canary`` at the new version, sized for about N% of
  the pods behind the shared Service (or N% of an HTTPRoute's weight), plus a Service of
  its own for a smoke call; after the bake the main Deployment takes the new version and the
  canary goes; on any failure the canary goes and the main Deployment was never touched.
- linear:N: the same canary, stepped to N%, 2N%, ... with a bake at each step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from deployer.providers import DeployerError, Progress, routes
from deployer.providers import live as gates
from deployer_kubernetes.cluster import DELETE_ORDER, Cluster
from deployer_kubernetes.diff import compared, differences
from deployer_kubernetes.manifests import Renderer, Version, canary_replicas
from deployer_kubernetes.names import (
    ANNOTATION_ACCELERATOR,
    ANNOTATION_IMAGE,
    ANNOTATION_PREVIOUS_ACCELERATOR,
    ANNOTATION_PREVIOUS_IMAGE,
    ANNOTATION_PREVIOUS_VERSION,
    HANDOVER_MANAGER,
    LABEL_VERSION,
    MANAGER,
    TRACK_CANARY,
    TRACK_STABLE,
    Names,
    annotations_of,
)
from deployer_kubernetes.options import KubernetesOptions
from deployer_kubernetes.rollout import diagnose, rollout_status
from deployer_kubernetes.signals import PodScraper


@dataclass(frozen=True)
class Outcome:
    """How watching a rollout ended."""

    ok: bool
    reason: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class Live:
    """What runs now, read from the main Deployment's labels and annotations."""

    deployment: dict[str, Any] | None

    @property
    def version(self) -> str | None:
        if self.deployment is None:
            return None
        return (self.deployment["metadata"].get("labels") or {}).get(LABEL_VERSION)

    def release_annotations(self) -> dict[str, str]:
        """The release annotations of what runs now ({} when there are none)."""
        if self.deployment is None:
            return {}
        return annotations_of(self.deployment["metadata"].get("annotations"))

    def annotation(self, key: str) -> str | None:
        if self.deployment is None:
            return None
        return (self.deployment["metadata"].get("annotations") or {}).get(key)

    @property
    def image(self) -> str | None:
        if self.deployment is None:
            return None
        containers = self.deployment["spec"]["template"]["spec"]["containers"]
        return self.annotation(ANNOTATION_IMAGE) or containers[0]["image"]

    @property
    def replicas(self) -> int:
        if self.deployment is None:
            return 0
        return int(self.deployment["spec"].get("replicas") or 0)


class Deployer:
    """The operations behind the provider's deploy, wait, rollback and destroy."""

    def __init__(
        self, cluster: Cluster, renderer: Renderer, names: Names, options: KubernetesOptions
    ) -> None:
        self.cluster = cluster
        self.renderer = renderer
        self.names = names
        self.options = options

    # -- reading ------------------------------------------------------------------------

    def live(self) -> Live:
        return Live(self.cluster.get("Deployment", self.names.deployment()))

    def canary(self) -> dict[str, Any] | None:
        return self.cluster.get("Deployment", self.names.canary)

    def target_version(
        self, image: str, version: str, live: Live, accelerator: str = "cpu"
    ) -> Version:
        """The Version to render: the previous one is what runs now (kept on a re-apply)."""
        if live.version is None:
            return Version(image, version, accelerator=accelerator)
        if live.version == version:
            return Version(
                image,
                version,
                live.annotation(ANNOTATION_PREVIOUS_IMAGE),
                live.annotation(ANNOTATION_PREVIOUS_VERSION),
                accelerator,
                live.annotation(ANNOTATION_PREVIOUS_ACCELERATOR) or "cpu",
            )
        running = live.annotation(ANNOTATION_ACCELERATOR) or "cpu"
        return Version(image, version, live.image, live.version, accelerator, running)

    def changes(self, manifests: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
        """(action, detail, manifest) per object: a server-side dry run against the live one."""
        self.require_apis(manifests)
        result = []
        for manifest in manifests:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            live = self.cluster.get(kind, name)
            planned = self.cluster.apply(manifest, dry_run=True)
            if live is None:
                result.append(("create", "", manifest))
                continue
            found = differences(compared(live), compared(planned))
            result.append(("update" if found else "keep", "; ".join(found), manifest))
        return result

    def stale(self, manifests: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """(kind, name) of labelled objects deployer made that ``manifests`` no longer has."""
        wanted = {(m["kind"], m["metadata"]["name"]) for m in manifests}
        found = []
        for kind in DELETE_ORDER:
            for obj in self.cluster.list_objects(kind, self.names.owner_selector):
                key = (kind, obj["metadata"]["name"])
                if key not in wanted:
                    found.append(key)
        return found

    def require_apis(self, manifests: list[dict[str, Any]]) -> None:
        for manifest in manifests:
            if manifest["kind"] == "HTTPRoute" and not self.cluster.has_api(manifest["apiVersion"]):
                raise DeployerError(
                    "the cluster does not serve the Gateway API "
                    f"({manifest['apiVersion']}): HTTPRoute cannot be applied",
                    hint="install the Gateway API CRDs (standard channel), or use ingress "
                    "instead of http_route",
                )

    # -- writing ------------------------------------------------------------------------

    def apply_all(
        self,
        manifests: list[dict[str, Any]],
        live: Live,
        progress: Progress,
        *,
        keep_canary: bool = False,
    ) -> None:
        """Apply every manifest in order, then delete labelled objects no longer wanted
        (but the canary's, while promoting it)."""
        self.require_apis(manifests)
        self.hand_over_replicas(live, progress)
        for manifest in manifests:
            self.cluster.apply(manifest)
            progress(f"applied {manifest['kind'].lower()}/{manifest['metadata']['name']}")
        for kind, name in self.stale(manifests):
            if keep_canary and name == self.names.canary:
                continue
            self.cluster.delete(kind, name)
            progress(f"deleted {kind.lower()}/{name} (no longer configured)")

    def hand_over_replicas(self, live: Live, progress: Progress) -> None:
        """When an HPA takes over, hand spec.replicas to another field manager first, so that
        dropping it from our apply does not reset the Deployment to 1 replica."""
        if self.options.autoscaling is None or live.deployment is None:
            return
        for entry in live.deployment["metadata"].get("managedFields") or []:
            spec_fields = (entry.get("fieldsV1") or {}).get("f:spec") or {}
            if entry.get("manager") == MANAGER and "f:replicas" in spec_fields:
                handover = {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {
                        "name": self.names.deployment(),
                        "namespace": self.names.namespace,
                    },
                    "spec": {"replicas": max(live.replicas, self.options.autoscaling.min)},
                }
                self.cluster.apply(handover, manager=HANDOVER_MANAGER)
                progress("handed spec.replicas over to the HorizontalPodAutoscaler")
                return

    def remove_canary(self, version: str, progress: Progress) -> None:
        """Delete the canary Deployment and Service; the HTTPRoute goes back to one backend."""
        for kind in ("Deployment", "Service"):
            if self.cluster.delete(kind, self.names.canary):
                progress(f"deleted {kind.lower()}/{self.names.canary}")
        if self.options.http_route is not None:
            self.cluster.apply(self.renderer.http_route(version))

    # -- watching -----------------------------------------------------------------------

    def pod_selector(self, track: str, version: str) -> str:
        labels = {
            **self.names.selector(track),
            LABEL_VERSION: self.names.labels(version)[LABEL_VERSION],
        }
        return ",".join(f"{k}={v}" for k, v in labels.items())

    def watch(
        self, name: str, track: str, version: str, deadline: float, progress: Progress
    ) -> Outcome:
        """Poll a Deployment until rolled out, failed (with the pods' reasons) or the deadline."""
        started = time.monotonic()
        last = ""
        message = "not observed yet"
        while True:
            deployment = self.cluster.get("Deployment", name)
            if deployment is None:
                return Outcome(False, f"deployment/{name} disappeared while rolling out")
            state = rollout_status(deployment)
            message = state.message
            if message != last:
                progress(message)
                last = message
            if state.done:
                return Outcome(True, message)
            selector = self.pod_selector(track, version)
            if state.failed:
                found = diagnose(self.cluster, selector)
                return Outcome(False, message + (f": {found.text}" if found else ""))
            if self.options.fail_fast:
                found = diagnose(self.cluster, selector)
                if found is not None and found.hard:
                    return Outcome(False, f"deployment/{name} cannot become ready: {found.text}")
            if time.monotonic() >= deadline:
                found = diagnose(self.cluster, selector)
                waited = time.monotonic() - started
                reason = (
                    f"timed out after {waited:.0f}s waiting for deployment/{name}; "
                    f"last state: {message}"
                )
                if found is not None:
                    reason += f"; {found.text}"
                return Outcome(False, reason, timed_out=True)
            time.sleep(min(self.options.poll_interval, max(deadline - time.monotonic(), 0.01)))

    # -- strategies ---------------------------------------------------------------------

    def start_canary(self, version: Version, percent: int, live: Live, progress: Progress) -> int:
        """Create the canary at ``percent``; return its replica count."""
        replicas = canary_replicas(live.replicas or 1, percent)
        share = round(100 * replicas / (replicas + (live.replicas or 1)))
        self.cluster.apply(self.renderer.service(version.version, TRACK_CANARY))
        self.cluster.apply(self.renderer.deployment(version, TRACK_CANARY, replicas))
        if self.options.http_route is None:
            progress(
                f"canary {self.names.canary}: {replicas} pod(s) beside {live.replicas} "
                f"(about {share}% of requests for a requested {percent}%)"
            )
        else:
            progress(f"canary {self.names.canary}: {replicas} pod(s); route weight follows")
        return replicas

    def step_canary(
        self, version: Version, percent: int, live_replicas: int, progress: Progress
    ) -> None:
        replicas = canary_replicas(live_replicas or 1, percent)
        self.cluster.apply(self.renderer.deployment(version, TRACK_CANARY, replicas))
        progress(f"canary {self.names.canary}: {replicas} pod(s) for {percent}%")

    def route_weight(self, version: str, percent: int, progress: Progress) -> None:
        if self.options.http_route is not None:
            self.cluster.apply(self.renderer.http_route(version, canary_weight=percent))
            progress(f"httproute/{self.names.base}: {percent}% to the canary")

    def smoke(self, service: str, sample: list[Any] | None) -> str | None:
        """One prediction through ``service`` via the API server's proxy; None when fine."""
        try:
            return self._smoke(service, sample)
        except DeployerError as exc:
            return exc.message

    def _smoke(self, service: str, sample: list[Any] | None) -> str | None:
        if sample is None:
            status, _, body = self.cluster.proxy(service, "http", "GET", routes.OIP_READY, None, {})
            return None if status == 200 else f"readiness answered {status}"
        status, _, body = self.cluster.proxy(
            service,
            "http",
            "POST",
            routes.SAGEMAKER_INVOCATIONS,
            json.dumps(sample).encode(),
            {"Content-Type": "application/json", "Accept": "application/json"},
        )
        if status != 200:
            return f"smoke prediction answered {status}: {body[:300].decode(errors='replace')}"
        try:
            predictions = json.loads(body)["predictions"]
        except (ValueError, KeyError, TypeError):
            return f"smoke prediction returned {body[:300]!r}"
        if len(predictions) != len(sample):
            return f"smoke prediction returned {len(predictions)} rows for {len(sample)}"
        return None

    def bake(
        self,
        name: str,
        seconds: float,
        progress: Progress,
        read: gates.Reading | None = None,
        rules: gates.LiveRules | None = None,
    ) -> str | None:
        """Watch the canary for ``seconds``: its pods must stay available and not restart;
        with ``rules`` and ``read``, the live gate compares the versions every
        ``rules.interval_seconds`` (LiveGateFailed on a failing verdict)."""
        if seconds <= 0:
            return None
        progress(f"baking {name} for {seconds:g}s")
        watch = _Availability(self, name)
        try:
            if rules is None or read is None:
                watch.sleep(seconds)
            else:
                baker = gates.Baker(rules, sleep=watch.sleep, clock=time.monotonic)
                baker.bake(seconds, _reported(read, rules, progress))
        except _BakeProblem as exc:
            return str(exc)
        return None

    def scraper(self, track: str, version: str, progress: Progress) -> PodScraper:
        """What reads the /metrics of one version's pods on ``track``."""
        return PodScraper(self.cluster, self.pod_selector(track, version), progress)

    def _restarts(self, name: str) -> int:
        track = TRACK_CANARY if name == self.names.canary else TRACK_STABLE
        selector = ",".join(f"{k}={v}" for k, v in self.names.selector(track).items())
        return sum(
            c.get("restartCount", 0)
            for pod in self.cluster.pods(selector)
            for c in (pod.get("status") or {}).get("containerStatuses") or []
        )


class _BakeProblem(Exception):
    """The canary lost availability or restarted during a bake."""


class _Availability:
    """The bake's sleep: polls the canary Deployment while time passes and raises
    ``_BakeProblem`` when it loses availability, disappears or its containers restart."""

    def __init__(self, deployer: Deployer, name: str) -> None:
        self.deployer = deployer
        self.name = name
        self.restarts = deployer._restarts(name)

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        poll = self.deployer.options.poll_interval
        while time.monotonic() < deadline:
            time.sleep(min(poll, max(deadline - time.monotonic(), 0.01)))
            self.check()

    def check(self) -> None:
        name = self.name
        deployment = self.deployer.cluster.get("Deployment", name)
        if deployment is None:
            raise _BakeProblem(f"deployment/{name} disappeared during the bake")
        state = rollout_status(deployment)
        if not state.done:
            raise _BakeProblem(
                f"deployment/{name} lost availability during the bake: {state.message}"
            )
        now = self.deployer._restarts(name)
        if now > self.restarts:
            raise _BakeProblem(
                f"deployment/{name}'s containers restarted {now - self.restarts} time(s) "
                "during the bake"
            )


def _reported(read: gates.Reading, rules: gates.LiveRules, progress: Progress) -> gates.Reading:
    """``read``, with each comparison's verdict on the progress output."""

    def reading() -> tuple[gates.Signals | None, gates.Signals]:
        old, new = read()
        verdict = gates.compare(old, new, rules)
        progress(f"live gate: {verdict.outcome} ({verdict.reason})")
        return old, new

    return reading
