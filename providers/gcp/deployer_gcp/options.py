"""The options of a ``provider: vertex`` target, validated from deployer.yaml."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# Vertex sets these in the serving container; a deployment must not.
RESERVED_ENV_PREFIX = "AIP_"
_REGION = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")
_PROJECT = re.compile(r"^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")  # domain:id (legacy)
_REPOSITORY = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
# Vertex AI's NVIDIA AcceleratorType values (google.cloud.aiplatform_v1.types, 1.x).
GpuType = Literal[
    "NVIDIA_TESLA_K80",
    "NVIDIA_TESLA_P100",
    "NVIDIA_TESLA_V100",
    "NVIDIA_TESLA_P4",
    "NVIDIA_TESLA_T4",
    "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",
    "NVIDIA_L4",
    "NVIDIA_H100_80GB",
    "NVIDIA_H100_MEGA_80GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200",
    "NVIDIA_GB200",
    "NVIDIA_RTX_PRO_6000",
]


class VertexOptions(BaseModel):
    """Options of a ``provider: vertex`` target (see README.md for the reference)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = "vertex"
    project: str = Field(description="Google Cloud project ID")
    region: str = Field(description="Vertex AI location, e.g. europe-west4")
    registry: str | None = Field(
        default=None,
        description="docker registry host/path; default REGION-docker.pkg.dev/PROJECT/REPOSITORY",
    )
    repository: str = Field(default="deployer", description="Artifact Registry repository")
    image_name: str | None = Field(default=None, description="image name; default project name")
    machine_type: str = Field(default="n1-standard-2", min_length=1)
    accelerator_type: GpuType | None = Field(
        default=None, description="GPU attached to each replica (NVIDIA_TESLA_T4 ...); default none"
    )
    accelerator_count: int = Field(
        default=1, ge=1, le=16, description="GPUs per replica, with accelerator_type"
    )
    min_replicas: int = Field(default=1, ge=1, le=1000)
    max_replicas: int | None = Field(default=None, ge=1, le=1000, description="default min")
    endpoint_name: str | None = Field(
        default=None, min_length=1, max_length=128, description="endpoint display name"
    )
    service_account: str | None = Field(
        default=None, description="service account email the serving container runs as"
    )
    env: dict[str, str] = Field(default_factory=dict, description="serving container env")
    api_endpoint: str | None = Field(
        default=None,
        description="API host[:port] (Private Service Connect, sovereign clouds, tests)",
    )
    monitoring_endpoint: str | None = Field(
        default=None,
        description="Cloud Monitoring API host[:port] for live gates and alert policies; "
        "default monitoring.googleapis.com (tests)",
    )
    bigquery_endpoint: str | None = Field(
        default=None,
        description="BigQuery API base URL for reading captured predictions; default "
        "https://bigquery.googleapis.com (tests)",
    )
    poll_interval: float = Field(default=10.0, gt=0, le=300)
    operation_timeout: float = Field(
        default=1800.0, gt=0, description="seconds for blocking operations (upload, rollback)"
    )
    retry_initial_delay: float = Field(default=1.0, gt=0, le=60)
    retry_deadline: float = Field(
        default=120.0, gt=0, description="seconds to keep retrying throttled or transient calls"
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not a Google Cloud region (e.g. us-central1)")
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _PROJECT.match(value):
            raise ValueError(f"{value!r} is not a Google Cloud project ID")
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not _REPOSITORY.match(value):
            raise ValueError("expected lower-case letters, digits and '-', starting with a letter")
        return value

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip().rstrip("/")
            if "://" in value or not value:
                raise ValueError("expected HOST[:PORT][/PATH] without a scheme")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in value if k.upper().startswith(RESERVED_ENV_PREFIX))
        if reserved:
            raise ValueError(f"{', '.join(reserved)}: Vertex AI sets AIP_* variables itself")
        return value

    @field_validator("max_replicas")
    @classmethod
    def _replicas(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_replicas")
        if value is not None and low is not None and value < low:
            raise ValueError(f"must be at least min_replicas ({low})")
        return value

    @property
    def replicas(self) -> tuple[int, int]:
        """(min, max) replica counts for the deployed model's autoscaling."""
        return self.min_replicas, self.max_replicas or self.min_replicas

    def registry_path(self) -> str:
        """Where images go: the ``registry`` option or the Artifact Registry repository."""
        return self.registry or f"{self.region}-docker.pkg.dev/{self.project}/{self.repository}"
