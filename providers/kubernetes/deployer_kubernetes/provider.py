"""The ``kubernetes`` provider: Deployment, Service, HPA, PDB (and an Ingress or HTTPRoute)
by server-side apply, watched like ``kubectl rollout status``, invoked through the API
server's service proxy. See the package README for options and strategies."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from deployer.providers import (
    Backend,
    Change,
    DeployerError,
    Deployment,
    Image,
    Invocation,
    Plan,
    Progress,
    ProjectInfo,
    Release,
    Status,
    Strategy,
    Target,
    UsageError,
    monitoring,
    parse_options,
    routes,
)
from deployer.providers import batch as batch_types
from deployer.providers import live as gates
from deployer_kubernetes import capture as capture_plan
from deployer_kubernetes import registry
from deployer_kubernetes.batch import BatchJobs
from deployer_kubernetes.captured import CaptureReader
from deployer_kubernetes.cluster import Cluster
from deployer_kubernetes.deploy import Deployer
from deployer_kubernetes.diff import summary
from deployer_kubernetes.manifests import Renderer, Version
from deployer_kubernetes.names import (
    ANNOTATION_ACCELERATOR,
    ANNOTATION_PREVIOUS_ACCELERATOR,
    GPU_RESOURCE,
    TRACK_CANARY,
    TRACK_STABLE,
    Names,
)
from deployer_kubernetes.options import KubernetesOptions
from deployer_kubernetes.rollout import diagnose, rollout_status
from deployer_kubernetes.signals import step_reader

ROLLBACK_GRACE = 30.0  # seconds a failed rollout's automatic rollback may take past the timeout


def out_of_time(deadline: float, bake: float, step: int) -> str | None:
    """Why the rollout cannot go on at ``step`` before ``deadline`` (None: it can)."""
    left = deadline - time.monotonic()
    if left > bake and left > 0:
        return None
    need = f"the {bake:g}s bake at {step}%" if bake else f"promoting past {step}%"
    return (
        f"the push timeout leaves {max(left, 0):.0f}s, not enough for {need}: the rollout "
        "cannot finish in time"
    )


class KubernetesProvider:
    """Deploys one target's model server to a Kubernetes namespace."""

    name: ClassVar[str] = "kubernetes"
    managed: ClassVar[bool] = False  # the router checks its health route itself
    default_router_auth: ClassVar[str | None] = None
    captured_skipped: int = 0  # capture lines the last captured() could not decode

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        self.options = parse_options(KubernetesOptions, target)
        self.target = target
        self.info = project
        self.names = Names.of(project.name, target.name, self.options.namespace, self.options.name)
        self.renderer = Renderer(self.options, self.names)
        self.cluster = Cluster(self.options, target.name)
        self.deployer = Deployer(self.cluster, self.renderer, self.names, self.options)
        self.batch_jobs = BatchJobs(self.cluster, self.names, self.options, target.name)

    def __repr__(self) -> str:
        return (
            f"KubernetesProvider(target={self.target.name!r}, namespace={self.names.namespace!r})"
        )

    # -- render (for GitOps; the core's `deployer render --to T`) --------------------------

    def render(self, source: Release | str, *, version: str | None = None) -> list[dict[str, Any]]:
        """Every manifest of this target, as dicts in apply order; no cluster is contacted.

        ``source`` is a Release (its image is named as ``publish`` will push it: the
        registry repository tagged with the version) or an image reference; ``version``
        labels the objects (default: the release's version, or the reference's tag/digest).
        """
        if isinstance(source, str):
            image = source
            version = version or _version_of(source)
        else:
            image = self._planned_ref(source)
            version = version or source.version
            planned = Version(image, version, accelerator=source.accelerator)
            return self.renderer.all(dataclasses.replace(planned, capture=source.capture))
        return self.renderer.all(Version(image, version))

    def render_yaml(self, source: Release | str, *, version: str | None = None) -> str:
        """The manifests as one multi-document YAML stream."""
        import yaml

        manifests = self.render(source, version=version)
        header = (
            f"# Rendered by deployer-kubernetes for project {self.names.project}, "
            f"target {self.names.target}.\n"
        )
        return header + "".join(
            "---\n" + yaml.safe_dump(m, sort_keys=False, default_flow_style=False)
            for m in manifests
        )

    def write_manifests(
        self, source: Release | str, folder: str | Path, *, version: str | None = None
    ) -> list[Path]:
        """One file per manifest in ``folder`` (``NN-kind-name.yaml``, in apply order)."""
        import yaml

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for index, manifest in enumerate(self.render(source, version=version), start=1):
            name = f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
            path = out / name
            path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
            written.append(path)
        return written

    def _planned_ref(self, release: Release) -> str:
        if self.options.registry:
            return f"{self.options.registry}:{release.version}"
        return release.image.ref

    # -- the provider protocol ---------------------------------------------------------

    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        """A server-side dry run of every object, compared with what is live; every
        strategy runs here (no ``problems``)."""
        live = self.deployer.live()
        image = live.image if live.version == release.version and live.image else None
        version = self.deployer.target_version(
            image or self._planned_ref(release), release.version, live, release.accelerator
        )
        problems, notes = capture_plan.planned(release.capture, self.options, self.target.name)
        if not problems:
            version = dataclasses.replace(version, capture=release.capture)
        manifests = self.renderer.all(version)
        changes = []
        for action, detail, manifest in self.deployer.changes(manifests):
            resource = f"{manifest['kind'].lower()}/{manifest['metadata']['name']}"
            if action == "create":
                detail = f"in namespace {self.names.namespace}"
            elif action == "keep":
                detail = "no change"
            else:
                detail = summary(detail.split("; "))
            changes.append(Change(action, resource, detail))  # type: ignore[arg-type]
        for kind, name in self.deployer.stale(manifests):
            detail = (
                "a canary left by an interrupted push"
                if name == self.names.canary
                else ("no longer configured")
            )
            changes.append(Change("delete", f"{kind.lower()}/{name}", detail))
        return Plan(self.target.name, changes, problems, notes=[*notes, *gpu_notes(release)])

    def publish(self, image: Image, progress: Progress) -> str:
        return registry.publish(self.options, self.target.name, image, progress)

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        live = self.deployer.live()
        canary = self.deployer.canary()
        version = self.deployer.target_version(
            image_ref, release.version, live, release.accelerator
        )
        # A version already live keeps the annotations of the push that brought it (as on
        # SageMaker and Vertex): a second identical push changes nothing.
        same = live.version == release.version and live.release_annotations()
        annotations = live.release_annotations() if same else release.annotations
        version = dataclasses.replace(version, annotations=annotations, capture=release.capture)
        manifests = self.renderer.all(version)
        details: dict[str, Any] = {
            "namespace": self.names.namespace,
            "deployment": self.names.deployment(),
            "image": image_ref,
            "strategy": "all-at-once",
            "sample": release.sample,
            "accelerator": release.accelerator,
            "capture": capture_plan.to_details(release.capture),
        }
        if live.version == release.version and canary is None:
            changes = [c for c in self.deployer.changes(manifests) if c[0] != "keep"]
            stale = self.deployer.stale(manifests)
            assert live.deployment is not None
            if not changes and not stale and rollout_status(live.deployment).done:
                progress(f"{self.target.name}: version {release.version} is already live")
                return Deployment(self.target.name, release.version, live.version, False, details)
        if canary is not None:
            progress(f"removing {self.names.canary} left by an interrupted push")
            self.deployer.remove_canary(live.version or release.version, progress)
        kind = strategy.kind
        if kind != "all-at-once" and (live.version is None or live.version == release.version):
            why = "nothing is live yet" if live.version is None else "this version is live"
            progress(f"{strategy} needs a live version to compare with ({why}): all at once")
            kind = "all-at-once"
        if kind == "all-at-once":
            self.deployer.apply_all(manifests, live, progress)
        else:
            replicas = self.deployer.start_canary(version, strategy.percent, live, progress)
            details.update(
                strategy=kind,
                percent=strategy.percent,
                bake_seconds=strategy.bake_seconds,
                canary=self.names.canary,
                canary_replicas=replicas,
                stable_replicas=live.replicas,
            )
            if strategy.live is not None:
                details["live"] = asdict(strategy.live)
        details["previous_image"] = live.image
        return Deployment(self.target.name, release.version, live.version, True, details)

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        if not deployment.changed:
            return self.status()
        deadline = time.monotonic() + timeout
        details = deployment.details
        if details.get("strategy", "all-at-once") == "all-at-once":
            outcome = self.deployer.watch(
                self.names.deployment(), TRACK_STABLE, deployment.version, deadline, progress
            )
            if outcome.ok:
                return self.status()
            return self._failed(deployment, outcome.reason, outcome.timed_out, progress)
        return self._canary(deployment, deadline, progress)

    def _canary(self, deployment: Deployment, deadline: float, progress: Progress) -> Status:
        """Watch, smoke-test and bake the canary at each step, then promote it. A step
        whose bake does not fit before ``deadline`` (the push timeout) is not begun: the
        canary is removed, so the previous version alone serves, never a half rollout."""
        details = deployment.details
        percent = int(details["percent"])
        steps = [percent] if details["strategy"] == "canary" else list(range(percent, 100, percent))
        live = self.deployer.live()
        previous = deployment.previous_version or ""
        version = self.deployer.target_version(
            details["image"], deployment.version, live, details.get("accelerator", "cpu")
        )
        version = dataclasses.replace(version, capture=capture_plan.of_details(details))
        stable_replicas = int(details.get("stable_replicas") or live.replicas or 1)
        bake = float(details.get("bake_seconds") or 0)
        rules = gates.LiveRules(**details["live"]) if details.get("live") else None
        for index, step in enumerate(steps):
            if index:
                self.deployer.step_canary(version, step, stable_replicas, progress)
            outcome = self.deployer.watch(
                self.names.canary, TRACK_CANARY, deployment.version, deadline, progress
            )
            problem = None if outcome.ok else outcome.reason
            if problem is None:
                self.deployer.route_weight(previous, step, progress)
                problem = self.deployer.smoke(
                    self.names.service(TRACK_CANARY), details.get("sample")
                )
                if problem is None:
                    progress(f"canary at {step}%: smoke prediction ok")
                    problem = out_of_time(deadline, bake, step)
                if problem is None:
                    try:
                        problem = self._bake(deployment, bake, rules, progress)
                    except gates.LiveGateFailed as exc:
                        return self._live_gate_failed(deployment, step, exc.verdict, progress)
            if problem is None and time.monotonic() >= deadline:
                problem = out_of_time(deadline, 0.0, step)
            if problem is not None:
                return self._canary_failed(deployment, step, problem, progress)
        progress(f"promoting {deployment.version} to deployment/{self.names.deployment()}")
        self.deployer.apply_all(self.renderer.all(version), live, progress, keep_canary=True)
        outcome = self.deployer.watch(
            self.names.deployment(), TRACK_STABLE, deployment.version, deadline, progress
        )
        self.deployer.remove_canary(deployment.version, progress)
        if outcome.ok:
            return self.status()
        reason = f"promoting {deployment.version} to deployment/{self.names.deployment()}: "
        return self._failed(deployment, reason + outcome.reason, outcome.timed_out, progress)

    def _bake(
        self,
        deployment: Deployment,
        seconds: float,
        rules: gates.LiveRules | None,
        progress: Progress,
    ) -> str | None:
        """One step's bake; with live rules, the old and the new pods' /metrics are compared
        from now on (raises LiveGateFailed)."""
        read = None
        if rules is not None and seconds > 0:
            read = step_reader(
                self.deployer.scraper(TRACK_STABLE, deployment.previous_version or "", progress),
                self.deployer.scraper(TRACK_CANARY, deployment.version, progress),
            )
        return self.deployer.bake(self.names.canary, seconds, progress, read, rules)

    def _live_gate_failed(
        self, deployment: Deployment, step: int, verdict: gates.Verdict, progress: Progress
    ) -> Status:
        """The canary served worse than the old version: remove it, the old alone serves."""
        previous = deployment.previous_version or ""
        progress(f"live gate: fail at {step}% ({verdict.reason})")
        reason = f"live gate: {verdict.reason}; rolled back: {previous} keeps serving"
        return self._without_canary(deployment, reason, {"live_gate": verdict.to_dict()}, progress)

    def _canary_failed(
        self, deployment: Deployment, step: int, problem: str, progress: Progress
    ) -> Status:
        """Remove the canary: the previous version alone serves again."""
        previous = deployment.previous_version or ""
        reason = (
            f"canary {self.names.canary} of {deployment.version} failed at {step}%: "
            f"{problem}; rolled back: the canary was removed and {previous} keeps serving"
        )
        return self._without_canary(deployment, reason, {}, progress)

    def _without_canary(
        self, deployment: Deployment, reason: str, details: dict[str, Any], progress: Progress
    ) -> Status:
        """The canary removed, the previous version alone serving: a failed, rolled-back
        Status with ``reason``."""
        previous = deployment.previous_version or ""
        self.deployer.remove_canary(previous, progress)
        progress(f"removed canary {self.names.canary}: {previous} alone serves")
        return Status(
            self.target.name,
            "failed",
            previous or None,
            self.route().url,
            reason,
            {"rolled_back": True, **details},
        )

    def _failed(
        self, deployment: Deployment, reason: str, timed_out: bool, progress: Progress
    ) -> Status:
        """A failed or timed-out rollout: roll back to the previous version when there is
        one, so the target is left at a known version (a timeout is never left half done)."""
        previous = deployment.previous_version
        url = self.route().url
        if not previous or previous == deployment.version:
            what = "timed out" if timed_out else "failed"
            note = (
                f"nothing to roll back to: {deployment.version} was the first version here "
                f"and stays, {what}"
                if not previous
                else f"{deployment.version} was already live before: nothing to roll back to"
            )
            return Status(self.target.name, "failed", deployment.version, url, f"{reason}; {note}")
        progress(f"rolling back to {previous}" + (" (timed out)" if timed_out else ""))
        try:
            self._roll_back(progress, ROLLBACK_GRACE + self.options.poll_interval)
        except DeployerError as exc:
            note = (
                f"the automatic rollback to {previous} did not finish: {exc.message}; "
                f"`deployer rollback --to {self.target.name}` tries again"
            )
            live = self.deployer.live().version
            return Status(
                self.target.name, "failed", live, url, f"{reason}; {note}", {"rolled_back": False}
            )
        note = f"rolled back: {previous} keeps serving"
        return Status(
            self.target.name, "failed", previous, url, f"{reason}; {note}", {"rolled_back": True}
        )

    def status(self) -> Status:
        live = self.deployer.live()
        if live.deployment is None:
            return Status(self.target.name, "absent", reason="nothing deployed")
        state = rollout_status(live.deployment)
        details = {
            "namespace": self.names.namespace,
            "context": self.cluster.context,
            "deployment": self.names.deployment(),
            "image": live.image,
            "replicas": live.replicas,
            "available": state.available,
            "previous_version": live.annotation("deployer.dev/previous-version"),
            "annotations": live.release_annotations(),
        }
        canary = self.deployer.canary()
        if canary is not None:
            details["canary"] = canary["metadata"].get("labels", {}).get("deployer-version")
        url = self.route().url
        if state.done and (state.available > 0 or live.replicas == 0):
            return Status(self.target.name, "healthy", live.version, url, details=details)
        reason = state.message
        selector = self.deployer.pod_selector(TRACK_STABLE, live.version or "")
        found = diagnose(self.cluster, selector)
        if found is not None:
            reason += f": {found.text}"
        if state.failed:
            return Status(self.target.name, "failed", live.version, url, reason, details)
        stuck = found is not None and found.hard
        return Status(
            self.target.name,
            "unhealthy" if stuck else "updating",
            live.version,
            url,
            reason,
            details,
        )

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        status, answer, data = self.cluster.proxy(
            self.names.service(), "http", "POST", routes.SAGEMAKER_INVOCATIONS, body, headers
        )
        return Invocation(status, data, answer.get("content-type", ""))

    def rollback(self, progress: Progress) -> Deployment:
        live = self.deployer.live()
        if live.deployment is None:
            raise UsageError(f"{self.target.name} has nothing deployed to roll back")
        return self._roll_back(progress, self.options.progress_deadline_seconds + 60.0)

    def _roll_back(self, progress: Progress, timeout: float) -> Deployment:
        live = self.deployer.live()
        previous_image = live.annotation("deployer.dev/previous-image")
        previous_version = live.annotation("deployer.dev/previous-version")
        if self.deployer.canary() is not None:
            self.deployer.remove_canary(live.version or "", progress)
        if not previous_image or not previous_version:
            raise UsageError(f"{self.target.name} has no previous version to roll back to")
        assert live.version is not None and live.image is not None
        progress(f"rolling back deployment/{self.names.deployment()} to {previous_version}")
        version = Version(
            previous_image,
            previous_version,
            live.image,
            live.version,
            live.annotation(ANNOTATION_PREVIOUS_ACCELERATOR) or "cpu",
            live.annotation(ANNOTATION_ACCELERATOR) or "cpu",
            capture=capture_plan.of_live(live.deployment),
        )
        self.deployer.apply_all(self.renderer.all(version), live, progress)
        outcome = self.deployer.watch(
            self.names.deployment(),
            TRACK_STABLE,
            previous_version,
            time.monotonic() + timeout,
            progress,
        )
        if not outcome.ok:
            raise DeployerError(
                f"the rollback to {previous_version} did not finish: {outcome.reason}"
            )
        return Deployment(
            self.target.name, previous_version, live.version, True, {"image": previous_image}
        )

    def destroy(self, progress: Progress) -> list[str]:
        """Delete every object labelled with this project and target (idempotent)."""
        from deployer_kubernetes.cluster import DELETE_ORDER

        removed = []
        for kind in DELETE_ORDER:
            for obj in self.cluster.list_objects(kind, self.names.owner_selector):
                name = obj["metadata"]["name"]
                if self.cluster.delete(kind, name):
                    removed.append(f"{kind.lower()}/{name}")
                    progress(f"deleted {kind.lower()}/{name}")
        return removed

    def captured(self, since: datetime | None = None) -> Iterator[monitoring.CapturedRecord]:
        """What the model-server pods captured, from their logs (stdout) or from the
        capture PersistentVolumeClaim through a short-lived reader Job (``captured.py``,
        ``capture_job.py``); lines that did not decode are counted in ``captured_skipped``."""
        reader = CaptureReader(self.cluster, self.names, self.options, self.target.name)
        records = reader.records(since)  # a UsageError at once, not on first iteration
        self.captured_skipped = reader.skipped
        return iter(records)

    # -- batch (deployer batch: an indexed Job, see batch.py) ------------------------------

    def batch_submit(
        self, release: Release, image_ref: str, spec: batch_types.BatchSpec, progress: Progress
    ) -> batch_types.BatchJob:
        job = self.batch_jobs.submit(release, image_ref, spec)
        progress(f"created job/{job.job_id} in namespace {self.names.namespace}")
        return job

    def batch_status(self, job_id: str) -> batch_types.BatchJob:
        return self.batch_jobs.status(job_id)

    def batch_logs(self, job_id: str) -> Iterator[str]:
        return self.batch_jobs.logs(job_id)

    def batch_cancel(self, job_id: str) -> batch_types.BatchJob:
        return self.batch_jobs.cancel(job_id)

    def route(self) -> Backend:
        options = self.options
        if options.url:
            url = options.url
        elif options.ingress is not None:
            scheme = "https" if options.ingress.tls_secret else "http"
            url = f"{scheme}://{options.ingress.host}{options.ingress.path.rstrip('/')}"
        elif options.http_route is not None and options.http_route.hostnames:
            scheme = "https" if options.http_route.https else "http"
            url = (
                f"{scheme}://{options.http_route.hostnames[0]}{options.http_route.path.rstrip('/')}"
            )
        else:
            port = "" if options.service_port == 80 else f":{options.service_port}"
            url = f"http://{self.names.service()}.{self.names.namespace}.svc.cluster.local{port}"
        return Backend(self.target.name, self.name, url, options.route_auth, options.region)


def _version_of(image: str) -> str:
    """A label-safe version from an image reference's digest or tag."""
    if "@" in image:
        return image.rsplit("@", 1)[1].removeprefix("sha256:")[:12]
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "latest"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", tag)[:63]


def gpu_notes(release: Release) -> list[str]:
    """What a CUDA image needs from the cluster (a CPU image: nothing to say)."""
    if release.accelerator != "cuda":
        return []
    return [
        f"a CUDA image: each pod's limits ask for {GPU_RESOURCE}: 1, so pods schedule only "
        "on nodes whose NVIDIA device plugin advertises a GPU; a tainted GPU node pool "
        "(AKS suggests sku=gpu:NoSchedule; GKE adds its own toleration) needs a matching "
        "toleration, which deployer does not add"
    ]
