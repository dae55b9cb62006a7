"""Prediction capture on Kubernetes: the image captures itself (``DEPLOYER_CAPTURE``, see
``deployer.providers.monitoring``), so deployer only renders its settings into the pods.

Where the records go:
- ``stdout`` (the default): each record is a line of the container's log prefixed with
  ``CAPTURE_STDOUT_PREFIX``; ``captured()`` reads them back through the pod log API, so
  they live as long as the cluster keeps the pods' logs (a log collector keeps them longer);
- a PersistentVolumeClaim (target option ``capture_pvc``) mounted at ``capture_mount_path``
  (or at ``monitoring.capture.destination`` when that is an absolute path): ``capture-*.jsonl``
  files the image rotates. An emptyDir would die with its pod, so a folder destination
  without a PVC is refused. ``captured()`` reads them with a short-lived Job that mounts
  the claim read-only and runs the release's image (``capture_job.py``): the claim must be
  mountable by one more pod (ReadWriteMany, or ReadWriteOnce with the reader on a model
  pod's node, which its affinity prefers; not ReadWriteOncePod).

Object storage (``s3://``, ``gs://``, ``az://``, ``bq://``) is refused on this target.
Redaction (drop/hash) is done by the image before anything is written: passed through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from deployer.providers import UsageError, monitoring
from deployer_kubernetes.options import KubernetesOptions

VOLUME = "capture"
STDOUT = "stdout"


@dataclass(frozen=True)
class CaptureMount:
    """How one release's capture is rendered into the Deployment's pod template."""

    spec: monitoring.CaptureSpec
    destination: Literal["stdout", "volume"]
    folder: str | None = None  # inside the container (volume only)
    claim: str | None = None

    def env(self) -> list[dict[str, str]]:
        """The container's environment: ``DEPLOYER_CAPTURE`` as the image reads it."""
        folder = self.folder if self.destination == "volume" else STDOUT
        return [{"name": k, "value": v} for k, v in self.spec.to_env(folder).items()]

    def volume_mounts(self) -> list[dict[str, Any]]:
        if self.destination != "volume":
            return []
        return [{"name": VOLUME, "mountPath": self.folder}]

    def volumes(self) -> list[dict[str, Any]]:
        if self.destination != "volume":
            return []
        return [{"name": VOLUME, "persistentVolumeClaim": {"claimName": self.claim}}]

    def describe(self) -> str:
        """What ``plan`` says the pods will capture, and where."""
        spec = self.spec
        what = " and ".join(
            w for w, on in (("inputs", spec.inputs), ("outputs", spec.outputs)) if on
        )
        where = (
            "to stdout (pod logs, prefixed lines: deployer drift reads them)"
            if self.destination == STDOUT
            else f"to persistentvolumeclaim/{self.claim} mounted at {self.folder} "
            f"(capture-*.jsonl, rotated at {spec.max_file_mb:g} MB, "
            f"{spec.max_total_mb:g} MB in all)"
        )
        text = f"capture: the image records {spec.sample:.0%} of requests ({what or 'ids only'}) "
        text += where
        redact = [f"drop {', '.join(spec.drop)}"] if spec.drop else []
        redact += [f"hash {', '.join(spec.hash)}"] if spec.hash else []
        if redact:
            text += f"; redacted by the image before writing: {'; '.join(redact)}"
        return text


def problem(spec: monitoring.CaptureSpec, options: KubernetesOptions, target: str) -> str | None:
    """Why this target cannot capture as ``spec`` asks (None: it can)."""
    destination = spec.destination
    field = f"monitoring.capture.destination ({destination!r})"
    if destination and "://" in destination:
        return (
            f"{target}: {field}: a Kubernetes target captures to stdout (pod logs) or to a "
            f"PersistentVolumeClaim (targets.{target}.capture_pvc), not to object storage"
        )
    if destination == STDOUT and options.capture_pvc:
        return (
            f"{target}: {field} but targets.{target}.capture_pvc is set too: remove one "
            "(stdout, or the claim)"
        )
    if destination and destination != STDOUT:
        if not destination.startswith("/"):
            return f"{target}: {field}: expected 'stdout' or an absolute folder inside the pod"
        if not options.capture_pvc:
            return (
                f"{target}: {field}: a folder inside the pod (an emptyDir) is lost with the "
                f"pod; set targets.{target}.capture_pvc to a PersistentVolumeClaim, or use "
                "stdout"
            )
    return None


def mount(
    spec: monitoring.CaptureSpec | None, options: KubernetesOptions, target: str
) -> CaptureMount | None:
    """The capture to render (None: none); UsageError when ``problem`` finds one."""
    if spec is None:
        return None
    found = problem(spec, options, target)
    if found is not None:
        raise UsageError(found)
    if not options.capture_pvc:
        return CaptureMount(spec, "stdout")
    folder = spec.destination if spec.destination else options.capture_mount_path
    return CaptureMount(spec, "volume", folder, options.capture_pvc)


def from_container(container: dict[str, Any]) -> monitoring.CaptureSpec | None:
    """The capture a live container runs with (None: none), read from its environment."""
    environ = {e.get("name", ""): e.get("value", "") for e in container.get("env") or []}
    try:
        spec = monitoring.CaptureSpec.from_env(environ)
    except ValueError:
        return None
    if spec is not None and spec.destination == STDOUT:
        # the folder the pod was given is the rendering's, not the release's destination
        return _with_destination(spec, None)
    return spec


def _with_destination(
    spec: monitoring.CaptureSpec, destination: str | None
) -> monitoring.CaptureSpec:
    from dataclasses import replace

    return replace(spec, destination=destination)


def planned(
    spec: monitoring.CaptureSpec | None, options: KubernetesOptions, target: str
) -> tuple[list[str], list[str]]:
    """``plan``'s problems and notes for the release's capture."""
    if spec is None:
        return [], []
    found = problem(spec, options, target)
    if found is not None:
        return [found], []
    rendered = mount(spec, options, target)
    assert rendered is not None
    return [], [rendered.describe()]


def to_details(spec: monitoring.CaptureSpec | None) -> str | None:
    """The capture as a Deployment's details carry it to ``wait`` (a canary's promotion)."""
    return None if spec is None else spec.to_env()[monitoring.CAPTURE_ENV]


def of_details(details: dict[str, Any]) -> monitoring.CaptureSpec | None:
    text = details.get("capture")
    if not text:
        return None
    return monitoring.CaptureSpec.from_env({monitoring.CAPTURE_ENV: text})


def of_live(deployment: dict[str, Any] | None) -> monitoring.CaptureSpec | None:
    """The capture a live Deployment renders (kept by a rollback)."""
    if deployment is None:
        return None
    return from_container(deployment["spec"]["template"]["spec"]["containers"][0])
