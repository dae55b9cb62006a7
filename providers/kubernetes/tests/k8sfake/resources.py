"""The resource types the fake serves: discovery data, defaulting and validation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

VERSION_INFO = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = field(
        default=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` as RBAC messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> list[dict[str, Any]]:
        entries = [
            {
                "name": self.plural,
                "singularName": self.singular or self.kind.lower(),
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": list(self.verbs),
                **({"shortNames": list(self.short_names)} if self.short_names else {}),
            }
        ]
        for sub in self.subresources:
            entries.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind if sub in ("status", "scale") else "Status",
                    "verbs": ["get", "patch", "update"] if sub in ("status", "scale") else ["get"],
                }
            )
        return entries


CORE = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    Resource("", "v1", "services", "Service", short_names=("svc",), subresources=("proxy",)),
    Resource("", "v1", "pods", "Pod", short_names=("po",), subresources=("log", "status")),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
]
GROUPS = [
    Resource(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        subresources=("scale", "status"),
    ),
    Resource(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        subresources=("status",),
    ),
    Resource(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short_names=("pdb",),
        subresources=("status",),
    ),
    Resource(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        short_names=("ing",),
        subresources=("status",),
    ),
]
JOBS = Resource("batch", "v1", "jobs", "Job", subresources=("status",))
GROUPS.append(JOBS)
GATEWAY = Resource(
    "gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", subresources=("status",)
)


class Invalid(Exception):
    """A 422: ``causes`` are (field, message) pairs."""

    def __init__(self, kind: str, name: str, causes: list[tuple[str, str]]) -> None:
        self.kind, self.name, self.causes = kind, name, causes
        detail = ", ".join(f"{f}: {m}" for f, m in causes)
        super().__init__(f'{kind} "{name}" is invalid: {detail}')


# -- defaulting (what a real API server adds, so responses are complete) -------------------


def _probe_defaults(probe: dict[str, Any] | None) -> None:
    if not probe:
        return
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        probe.setdefault(key, value)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")


def _pod_spec_defaults(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("serviceAccountName"):
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for container in spec.get("containers", []):
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        image = container.get("image", "")
        latest = image.endswith(":latest") or (
            ":" not in image.rsplit("/", 1)[-1] and "@" not in image
        )
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("resources", {})
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            _probe_defaults(container.get(probe))
    for volume in spec.get("volumes", []):
        if "emptyDir" in volume and volume["emptyDir"] is None:
            volume["emptyDir"] = {}


def apply_defaults(kind: str, obj: dict[str, Any], allocate: Any) -> None:
    """Default ``obj`` in place; ``allocate(kind)`` hands out cluster IPs and node ports."""
    spec = obj.setdefault("spec", {}) if kind not in ("Event", "Namespace") else None
    if kind == "Deployment":
        assert spec is not None
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        _pod_spec_defaults(template.setdefault("spec", {}))
        obj.setdefault("status", {})
    elif kind == "Pod":
        assert spec is not None
        _pod_spec_defaults(spec)
    elif kind == "Job":
        assert spec is not None
        spec.setdefault("completionMode", "NonIndexed")
        if "completions" not in spec and "parallelism" not in spec:  # as the API server does
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("suspend", False)
        spec.setdefault("manualSelector", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        _pod_spec_defaults(template.setdefault("spec", {}))
        obj.setdefault("status", {})
    elif kind == "Service":
        assert spec is not None
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if "clusterIP" not in spec:
            spec["clusterIP"] = allocate("clusterIP")
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in port:
                port["nodePort"] = allocate("nodePort")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "HorizontalPodAutoscaler":
        obj.setdefault("status", {"currentReplicas": 0, "desiredReplicas": 0})
    elif kind == "PodDisruptionBudget":
        obj.setdefault(
            "status",
            {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0},
        )
    elif kind == "Ingress":
        for rule in (spec or {}).get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                path.setdefault("pathType", "ImplementationSpecific")
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "HTTPRoute":
        assert spec is not None
        for rule in spec.setdefault("rules", [{}]):
            rule.setdefault("matches", [{"path": {"type": "PathPrefix", "value": "/"}}])
            for ref in rule.get("backendRefs", []):
                ref.setdefault("group", "")
                ref.setdefault("kind", "Service")
                ref.setdefault("weight", 1)
        obj.setdefault("status", {"parents": []})
    elif kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})


# -- validation (a subset of what the real API server rejects with 422) --------------------


def validate(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = obj.get("metadata", {})
    name = meta.get("name", "")
    causes: list[tuple[str, str]] = []
    pattern = _DNS1035 if kind == "Service" else _DNS1123
    if not name or not pattern.match(name) or len(name) > (63 if kind == "Service" else 253):
        causes.append(("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 name'))
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append((f"metadata.labels[{key}]", f'Invalid value: "{value}"'))
    spec = obj.get("spec") or {}
    if kind == "Deployment":
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.append(("spec.selector", "Required value"))
        elif any(labels.get(k) != v for k, v in selector.items()):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    f"Invalid value: {labels}: `selector` does not match template `labels`",
                )
            )
        if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
            causes.append(("spec.selector", "Invalid value: field is immutable"))
        containers = (spec.get("template") or {}).get("spec", {}).get("containers") or []
        if not containers:
            causes.append(("spec.template.spec.containers", "Required value"))
        for index, container in enumerate(containers):
            if not container.get("image"):
                causes.append((f"spec.template.spec.containers[{index}].image", "Required value"))
        if (spec.get("replicas") or 0) < 0:
            causes.append(("spec.replicas", "must be greater than or equal to 0"))
    elif kind == "Job":
        causes += _job_causes(name, spec, (old or {}).get("spec"))
    elif kind == "Service":
        if not spec.get("ports"):
            causes.append(("spec.ports", "Required value"))
        if (
            old is not None
            and old.get("spec", {}).get("clusterIP")
            not in (
                None,
                spec.get("clusterIP"),
            )
            and "clusterIP" in spec
        ):
            causes.append(("spec.clusterIP", "Invalid value: field is immutable"))
    elif kind == "PodDisruptionBudget" and "minAvailable" in spec and "maxUnavailable" in spec:
        causes.append(("spec", "minAvailable and maxUnavailable cannot be both set"))
    elif kind == "HorizontalPodAutoscaler" and spec.get("maxReplicas", 0) < spec.get(
        "minReplicas", 1
    ):
        causes.append(("spec.maxReplicas", "must be greater than or equal to `minReplicas`"))
    if causes:
        raise Invalid(kind, name, causes)


def _job_causes(
    name: str, spec: dict[str, Any], old: dict[str, Any] | None
) -> list[tuple[str, str]]:
    """What the API server refuses in a batch/v1 Job (a subset)."""
    causes = []
    pod = (spec.get("template") or {}).get("spec") or {}
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{pod.get("restartPolicy")}": supported values: '
                '"OnFailure", "Never"',
            )
        )
    containers = pod.get("containers") or []
    if not containers:
        causes.append(("spec.template.spec.containers", "Required value"))
    for index, container in enumerate(containers):
        if not container.get("image"):
            causes.append((f"spec.template.spec.containers[{index}].image", "Required value"))
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append((f"spec.{key}", "must be greater than or equal to 0"))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        causes.append(("spec.activeDeadlineSeconds", "must be greater than 0"))
    if spec.get("completionMode") not in ("NonIndexed", "Indexed"):
        causes.append(("spec.completionMode", "Unsupported value"))
    if spec.get("completionMode") == "Indexed":
        if spec.get("completions") is None:
            causes.append(("spec.completions", "Required value: when completion mode is Indexed"))
        elif spec["completions"] > 100000:
            causes.append(("spec.completions", "must be less than or equal to 100000"))
        if (spec.get("parallelism") or 0) > 100000:
            causes.append(("spec.parallelism", "must be less than or equal to 100000"))
        if len(name) > 63:
            causes.append(("metadata.name", "must be no more than 63 characters"))
    if old is not None:
        for key in ("template", "completionMode", "completions", "selector"):
            if key in spec and spec.get(key) != old.get(key) and not old.get("suspend"):
                causes.append((f"spec.{key}", "Invalid value: field is immutable"))
    return causes
