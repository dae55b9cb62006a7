"""The manifests of one target, rendered from the package's templates in apply order.

Apply order (as Helm installs): PodDisruptionBudget, Service, Deployment,
HorizontalPodAutoscaler, then the Ingress or HTTPRoute. A canary adds a second Deployment
``NAME-canary`` and a Service of its own (so it can be smoke-tested alone); the main Service
selects both tracks, unless an HTTPRoute weighs the two Services exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.providers import monitoring, routes
from deployer_kubernetes import capture
from deployer_kubernetes.names import (
    ANNOTATION_ACCELERATOR,
    ANNOTATION_CHANGE_CAUSE,
    ANNOTATION_IMAGE,
    ANNOTATION_PREVIOUS_ACCELERATOR,
    ANNOTATION_PREVIOUS_IMAGE,
    ANNOTATION_PREVIOUS_VERSION,
    GPU_RESOURCE,
    TRACK_CANARY,
    TRACK_STABLE,
    Names,
    release_annotations,
)
from deployer_kubernetes.options import KubernetesOptions
from deployer_kubernetes.templating import render

PROBE_PERIOD = 5


@dataclass(frozen=True)
class Version:
    """What a Deployment runs, and what ran before it (for rollback)."""

    image: str
    version: str
    previous_image: str | None = None
    previous_version: str | None = None
    accelerator: str = "cpu"  # cuda: the pods ask for one nvidia.com/gpu
    previous_accelerator: str = "cpu"
    annotations: Mapping[str, str] = field(default_factory=dict)  # the release's
    capture: monitoring.CaptureSpec | None = None  # the release's (deployer_kubernetes.capture)


class Renderer:
    """Renders the manifests of one target from its options and names."""

    def __init__(self, options: KubernetesOptions, names: Names) -> None:
        self.options = options
        self.names = names

    # -- the full set ------------------------------------------------------------------

    def all(self, version: Version) -> list[dict[str, Any]]:
        """Every object of the target at ``version``, in apply order."""
        manifests = [
            self.pdb(version.version),
            self.service(version.version),
            self.deployment(version),
        ]
        if self.options.autoscaling is not None:
            manifests.append(self.hpa(version.version))
        if self.options.ingress is not None:
            manifests.append(self.ingress(version.version))
        if self.options.http_route is not None:
            manifests.append(self.http_route(version.version))
        return manifests

    # -- single objects ----------------------------------------------------------------

    def _common(self, name: str, version: str, track: str | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.names.namespace,
            "labels": self.names.labels(version, track),
        }

    def deployment(
        self, version: Version, track: str = TRACK_STABLE, replicas: int | None = None
    ) -> dict[str, Any]:
        """The model server Deployment; ``replicas`` None leaves scaling to the HPA."""
        options = self.options
        if track == TRACK_STABLE and replicas is None:
            replicas = options.fixed_replicas
        annotations = {
            **release_annotations(version.annotations),
            ANNOTATION_IMAGE: version.image,
            ANNOTATION_CHANGE_CAUSE: f"deployer push {version.version}",
        }
        if version.previous_image and version.previous_version:
            annotations[ANNOTATION_PREVIOUS_IMAGE] = version.previous_image
            annotations[ANNOTATION_PREVIOUS_VERSION] = version.previous_version
        if version.accelerator == "cuda":
            annotations[ANNOTATION_ACCELERATOR] = "cuda"
        if version.previous_accelerator == "cuda":
            annotations[ANNOTATION_PREVIOUS_ACCELERATOR] = "cuda"
        context = {
            **self._common(self.names.deployment(track), version.version, track),
            "annotations": annotations,
            "replicas": replicas,
            "progress_deadline_seconds": options.progress_deadline_seconds,
            "selector": self.names.selector(track),
            "pod_labels": self.names.labels(version.version, track),
            "service_account": options.service_account,
            "image_pull_secrets": (
                [{"name": options.image_pull_secret}] if options.image_pull_secret else None
            ),
            "run_as_user": options.run_as_user,
            "image": version.image,
            "image_pull_policy": options.image_pull_policy,
            "port": routes.DEFAULT_PORT,
            "resources": self._resources(version.accelerator),
            "routes": {"ready": routes.OIP_READY, "live": routes.OIP_LIVE},
            "startup_failure_threshold": math.ceil(options.startup_seconds / PROBE_PERIOD),
            **self._capture(version),
        }
        return render("deployment.yaml", context)

    def _capture(self, version: Version) -> dict[str, Any]:
        """The container's env, mounts and volumes: /tmp, plus the capture's."""
        found = capture.mount(version.capture, self.options, self.names.target)
        tmp = {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}
        return {
            "env": found.env() if found else None,
            "volume_mounts": [
                {"name": "tmp", "mountPath": "/tmp"},
                *(found.volume_mounts() if found else []),
            ],
            "volumes": [tmp, *(found.volumes() if found else [])],
        }

    def _resources(self, accelerator: str = "cpu") -> dict[str, Any] | None:
        """The container's requests and limits; a CUDA image's limits add one GPU (an
        extended resource: Kubernetes sets its request to the limit)."""
        resources = self.options.resources.model_dump(exclude_none=True)
        if accelerator == "cuda":
            resources["limits"] = {**resources.get("limits", {}), GPU_RESOURCE: "1"}
        kept = {kind: values for kind, values in resources.items() if values}
        return kept or None

    def service(self, version: str, track: str = TRACK_STABLE) -> dict[str, Any]:
        """The Service: the stable one selects every track (replica-ratio canaries) unless an
        HTTPRoute weighs the tracks' Services; the canary's selects only its pods."""
        if track == TRACK_CANARY or self.options.http_route is not None:
            selector = self.names.selector(track)
        else:
            selector = self.names.owner
        context = {
            **self._common(self.names.service(track), version, track),
            "service_type": "ClusterIP" if track == TRACK_CANARY else self.options.service_type,
            "selector": selector,
            "service_port": self.options.service_port,
        }
        return render("service.yaml", context)

    def hpa(self, version: str) -> dict[str, Any]:
        autoscaling = self.options.autoscaling
        assert autoscaling is not None
        context = {
            **self._common(self.names.base, version),
            "deployment": self.names.deployment(),
            "min_replicas": autoscaling.min,
            "max_replicas": autoscaling.max,
            "target_cpu_percent": autoscaling.target_cpu_percent,
        }
        return render("hpa.yaml", context)

    def pdb(self, version: str) -> dict[str, Any]:
        minimum = self.options.pdb_min_available
        context = {
            **self._common(self.names.base, version),
            "min_available": minimum,
            "max_unavailable": 1 if minimum is None else None,
            "selector": self.names.selector(TRACK_STABLE),
        }
        return render("pdb.yaml", context)

    def ingress(self, version: str) -> dict[str, Any]:
        ingress = self.options.ingress
        assert ingress is not None
        tls = [{"hosts": [ingress.host], "secretName": ingress.tls_secret}]
        context = {
            **self._common(self.names.base, version),
            "class_name": ingress.class_name,
            "tls": tls if ingress.tls_secret else None,
            "host": ingress.host,
            "path": ingress.path,
            "service": self.names.service(),
        }
        return render("ingress.yaml", context)

    def http_route(self, version: str, canary_weight: int = 0) -> dict[str, Any]:
        """The HTTPRoute; ``canary_weight`` (percent) sends that share to the canary."""
        route = self.options.http_route
        assert route is not None
        parent: dict[str, Any] = {"name": route.gateway_name}
        if route.gateway_namespace:
            parent["namespace"] = route.gateway_namespace
        if route.section_name:
            parent["sectionName"] = route.section_name
        port = self.options.service_port
        backends = [{"name": self.names.service(), "port": port, "weight": 100 - canary_weight}]
        if canary_weight:
            backends.append(
                {"name": self.names.service(TRACK_CANARY), "port": port, "weight": canary_weight}
            )
        context = {
            **self._common(self.names.base, version),
            "parent_refs": [parent],
            "hostnames": list(route.hostnames) or None,
            "path": route.path,
            "backend_refs": backends,
        }
        return render("httproute.yaml", context)


def canary_replicas(stable: int, percent: int) -> int:
    """Canary pods for ``percent`` of the traffic next to ``stable`` pods (at least 1)."""
    if percent >= 100:
        return max(stable, 1)
    return max(1, round(stable * percent / (100 - percent)))
