"""Options of a ``provider: sagemaker`` target, validated with pydantic (unknown fields fail)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

# SageMaker serverless memory sizes (MB) the service accepts.
SERVERLESS_MEMORY = (1024, 2048, 3072, 4096, 5120, 6144)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Serverless(_Strict):
    """A serverless endpoint instead of instances."""

    memory_mb: int = Field(default=2048, description="1024, 2048, ... 6144")
    max_concurrency: int = Field(default=5, ge=1, le=200)

    @field_validator("memory_mb")
    @classmethod
    def _memory(cls, value: int) -> int:
        if value not in SERVERLESS_MEMORY:
            sizes = ", ".join(str(s) for s in SERVERLESS_MEMORY)
            raise _invalid(f"expected one of {sizes} (got {value})")
        return value


class Autoscaling(_Strict):
    """application-autoscaling target tracking on invocations per instance."""

    min: int = Field(default=1, ge=1)
    max: int = Field(ge=1)
    target_invocations: float = Field(
        default=100.0, gt=0, description="SageMakerVariantInvocationsPerInstance per minute"
    )
    scale_in_cooldown: int = Field(default=300, ge=0)
    scale_out_cooldown: int = Field(default=60, ge=0)

    @field_validator("max")
    @classmethod
    def _bounds(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min")
        if low is not None and value < low:
            raise _invalid(f"max ({value}) is smaller than min ({low})")
        return value


class EndpointUrls(_Strict):
    """Endpoint overrides per AWS API: VPC interface endpoints, FIPS, or a test fake."""

    sagemaker: str | None = None
    runtime: str | None = None
    ecr: str | None = None
    autoscaling: str | None = None
    cloudwatch: str | None = None
    s3: str | None = None
    logs: str | None = None


class SageMakerOptions(_Strict):
    """Everything a ``provider: sagemaker`` target accepts in deployer.yaml."""

    provider: str = "sagemaker"
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="AWS region")
    role_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
        description="execution role SageMaker assumes to pull the image and run the model",
    )
    profile: str | None = Field(default=None, description="AWS shared-config profile")
    instance_type: str = Field(default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(default=1, ge=1)
    serverless: Serverless | None = None
    autoscaling: Autoscaling | None = None
    endpoint_name: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
        description="default: PROJECT-TARGET",
    )
    ecr_repository: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
        description="default: the project name",
    )
    environment: dict[str, str] = Field(default_factory=dict, description="container env")
    poll_interval: float = Field(default=15.0, gt=0, description="seconds between polls")
    bake_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description="wait between canary/linear traffic steps when the push sets none",
    )
    startup_health_timeout: int | None = Field(
        default=None, ge=60, le=3600, description="ContainerStartupHealthCheckTimeoutInSeconds"
    )
    termination_wait: int = Field(
        default=0, ge=0, le=3600, description="seconds the old fleet lives after the shift"
    )
    alarms: list[str] = Field(
        default_factory=list, description="CloudWatch alarms that roll an update back"
    )
    rollback_timeout: float = Field(default=1800.0, gt=0)
    keep_ecr_repository_on_destroy: bool = True
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(default=8, ge=1, le=20, description="per API call, retries included")
    endpoint_urls: EndpointUrls = EndpointUrls()
    capture_s3_uri: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="DataCaptureConfig.DestinationS3Uri when monitoring.capture.destination "
        "is not an s3:// URI",
    )
    batch_instance_type: str | None = Field(
        default=None,
        pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
        description="Batch Transform instance type (default: instance_type)",
    )
    batch_instance_count: int = Field(default=1, ge=1, le=100, description="Batch Transform")

    @field_validator("alarms")
    @classmethod
    def _alarms(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if len(value) > 10:
            raise _invalid(f"SageMaker watches at most 10 alarms per update (got {len(value)})")
        if value and info.data.get("bake_seconds") == 0:
            raise _invalid(
                "alarms are watched only while an update bakes: set bake_seconds above 0"
            )
        return value

    @field_validator("autoscaling")
    @classmethod
    def _scaling(cls, value: Autoscaling | None, info: ValidationInfo) -> Autoscaling | None:
        if value is None:
            return value
        if info.data.get("serverless") is not None:
            raise _invalid(
                "applies to instance endpoints; a serverless endpoint scales by "
                "serverless.max_concurrency"
            )
        count = info.data.get("instance_count")
        if count is not None and not value.min <= count <= value.max:
            raise _invalid(
                f"instance_count ({count}) must lie within min..max ({value.min}..{value.max})"
            )
        return value


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("value_error", message)
