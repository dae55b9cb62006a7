"""The options of a ``provider: kubernetes`` target, validated when the provider is built."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Kubernetes resource quantities: 250m, 0.5, 1Gi, 512Mi, 1e3 ...
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i?|[munk])?$")
_DNS_LABEL = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
_HOST = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Autoscaling(_Strict):
    """A HorizontalPodAutoscaler (autoscaling/v2) on CPU utilisation; it owns spec.replicas."""

    min: int = Field(default=2, ge=1, description="fewest replicas")
    max: int = Field(default=10, ge=1, description="most replicas")
    target_cpu_percent: int = Field(default=70, ge=1, le=1000, description="of requests.cpu")

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        return self


class ResourceList(_Strict):
    cpu: str | None = None
    memory: str | None = None

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None and not _QUANTITY.match(str(value)):
            raise ValueError(f"not a Kubernetes quantity (like 250m, 1, 512Mi, 2Gi): {value!r}")
        return value


class Resources(_Strict):
    """Container requests and limits (the HPA's CPU target is a share of requests.cpu)."""

    requests: ResourceList = ResourceList(cpu="250m", memory="512Mi")
    limits: ResourceList = ResourceList(cpu="1", memory="1Gi")


class Ingress(_Strict):
    """A networking.k8s.io/v1 Ingress in front of the Service."""

    host: str = Field(pattern=_HOST)
    class_name: str | None = None
    path: str = Field(default="/", pattern=r"^/")
    tls_secret: str | None = Field(default=None, description="a TLS secret; the URL is https")


class HttpRoute(_Strict):
    """A Gateway API (gateway.networking.k8s.io/v1) HTTPRoute attached to a Gateway."""

    gateway: str = Field(description="NAME or NAMESPACE/NAME of the Gateway")
    hostnames: tuple[str, ...] = ()
    path: str = Field(default="/", pattern=r"^/")
    section_name: str | None = Field(default=None, description="the Gateway listener")
    https: bool = Field(default=False, description="the Gateway terminates TLS for hostnames")

    @field_validator("hostnames")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not re.match(_HOST, host):
                raise ValueError(f"not a host name: {host!r}")
        return value

    @property
    def gateway_namespace(self) -> str | None:
        return self.gateway.split("/", 1)[0] if "/" in self.gateway else None

    @property
    def gateway_name(self) -> str:
        return self.gateway.rsplit("/", 1)[-1]


class KubernetesOptions(_Strict):
    """Options of a ``provider: kubernetes`` target (see the README for each)."""

    provider: str = "kubernetes"
    # where
    kubeconfig: str | None = Field(default=None, description="kubeconfig path; else $KUBECONFIG")
    context: str | None = Field(default=None, description="kubeconfig context; else the current")
    namespace: str = Field(default="default", pattern=_DNS_LABEL)
    name: str | None = Field(
        default=None, pattern=r"^[a-z]([-a-z0-9]{0,44}[a-z0-9])?$", description="object names"
    )
    region: str | None = Field(default=None, description="reported to the router only")
    # what runs
    replicas: int | None = Field(default=None, ge=0, description="fixed count (default 2)")
    autoscaling: Autoscaling | None = None
    resources: Resources = Resources()
    service_account: str | None = None
    run_as_user: int = Field(default=10001, ge=1, description="non-root uid of the container")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    startup_seconds: int = Field(default=300, ge=10, description="how long a model may load")
    # images
    registry: str | None = Field(
        default=None, description="repository to push to, e.g. registry.example.com/team/iris"
    )
    registry_username_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    registry_password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    image_pull_secret: str | None = Field(default=None, pattern=_DNS_LABEL.replace("61", "251"))
    # how it is reached
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    service_port: int = Field(default=80, ge=1, le=65535)
    ingress: Ingress | None = None
    http_route: HttpRoute | None = None
    route_auth: Literal["none", "bearer"] = "none"
    url: str | None = Field(default=None, description="the URL the router calls, if not derived")
    # prediction capture (monitoring.capture): stdout by default, or this claim's volume
    capture_pvc: str | None = Field(
        default=None, pattern=_DNS_LABEL.replace("61", "251"), description="a PVC for capture"
    )
    capture_mount_path: str = Field(default="/var/lib/deployer/capture", pattern=r"^/[^:]*$")
    # batch (deployer batch): the indexed Job's pods and how long a finished Job stays
    batch_parallelism: int = Field(default=2, ge=1, le=1000, description="pods (shards)")
    batch_backoff_limit: int = Field(default=0, ge=0, le=100, description="retries in all")
    batch_ttl_seconds: int = Field(default=86400, ge=0, description="a finished Job's life")
    batch_deadline_seconds: int | None = Field(default=None, ge=1, description="Job deadline")
    # availability
    pdb_min_available: int | str | None = Field(default=None, description="default maxUnavail 1")
    progress_deadline_seconds: int = Field(default=600, ge=1)
    fail_fast: bool = Field(default=True, description="fail on ImagePullBackOff/CrashLoopBackOff")
    # client behaviour
    poll_interval: float = Field(default=2.0, gt=0)
    request_timeout: float = Field(default=30.0, gt=0)
    retries: int = Field(default=5, ge=0, le=20, description="throttled/transient API calls")
    retry_backoff: float = Field(default=0.5, ge=0, description="seconds, doubled per retry")

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesOptions:
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError("set either replicas or autoscaling, not both")
        if self.ingress is not None and self.http_route is not None:
            raise ValueError("set either ingress or http_route, not both")
        if (self.registry_username_env is None) != (self.registry_password_env is None):
            raise ValueError("registry_username_env and registry_password_env go together")
        if self.autoscaling is not None and self.resources.requests.cpu is None:
            raise ValueError("autoscaling on CPU needs resources.requests.cpu")
        if isinstance(self.pdb_min_available, str) and not re.fullmatch(
            r"\d{1,3}%", self.pdb_min_available
        ):
            raise ValueError("pdb_min_available: expected a count or a percentage like '50%'")
        return self

    @property
    def fixed_replicas(self) -> int | None:
        """spec.replicas, or None when an HPA owns scaling."""
        if self.autoscaling is not None:
            return None
        return 2 if self.replicas is None else self.replicas
