"""Options of a ``provider: azureml`` target, validated from deployer.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$"
# The limits below, checked against Azure's own documentation (MicrosoftDocs/azure-ai-docs):
# - request_timeout_ms: default 5000, "the maximum value allowed is 180000 milliseconds"
#   (articles/machine-learning/reference-yaml-deployment-managed-online.md, RequestSettings,
#   commit 280c976c), "Max request time-out at endpoint level | 180 seconds" for managed
#   online endpoints (articles/machine-learning/how-to-manage-quotas.md, commit 0c509fa9);
#   past it the scoring URI answers 408 (how-to-troubleshoot-online-endpoints.md).
MAX_REQUEST_TIMEOUT_MS = 180_000
# - instances: "Number of instances per deployment | 50" for managed online endpoints, a
#   default limit Azure raises on request, plus 20% extra VM quota reserved for upgrades
#   (how-to-manage-quotas.md, commit 0c509fa9). deployer keeps to the default.
MAX_INSTANCES = 50
# - max_concurrent_requests_per_instance: Azure's default is 1 and no maximum is documented
#   (reference-yaml-deployment-managed-online.md, RequestSettings; the SDK's REST model
#   OnlineRequestSettings has no maximum either); Azure answers 429 past
#   2 * max_concurrent_requests_per_instance * instance_count pending requests
#   (how-to-troubleshoot-online-endpoints.md, commit 112100ce, "Common error codes for
#   managed online endpoints"). MAX_CONCURRENT_REQUESTS is deployer's own sanity bound.
MAX_CONCURRENT_REQUESTS = 1000
# The image's server is asynchronous (deployer/serving): each worker process takes many
# requests at once. Azure's own default of 1 per instance makes it answer 429 as soon as
# 2 * max_concurrent_requests_per_instance * instance_count requests are pending, which
# the router's concurrency reaches at once.
CONCURRENT_REQUESTS_PER_WORKER = 16


class AzureOptions(BaseModel):
    """Where the endpoint lives, how it is sized, and how the client talks to Azure."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = "azureml"
    subscription_id: str = Field(min_length=1, description="Azure subscription id")
    resource_group: str = Field(min_length=1, description="resource group of the workspace")
    workspace: str = Field(min_length=1, description="Azure ML workspace name")
    instance_type: str = Field(default="Standard_DS3_v2", description="VM size of each instance")
    instance_count: int = Field(
        default=1,
        ge=1,
        le=MAX_INSTANCES,
        description="instances per deployment (Azure allows 50)",
    )
    endpoint_name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="3-32 letters, digits or '-', starting with a letter; default project-target",
    )
    auth_mode: Literal["key", "aml_token"] = Field(
        default="key", description="how callers authenticate to the scoring URI"
    )
    request_timeout_ms: int = Field(
        default=5000, ge=1, le=MAX_REQUEST_TIMEOUT_MS, description="per-request timeout"
    )
    max_concurrent_requests_per_instance: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CONCURRENT_REQUESTS,
        description="requests Azure lets in at once per instance (twice that many may wait, "
        "more get 429); default: 16 per serving worker (serving.workers when the project "
        "tells it, else 1 worker)",
    )
    probe_initial_delay: int = Field(
        default=10, ge=0, le=3600, description="seconds before the first liveness/readiness probe"
    )
    probe_failure_threshold: int = Field(
        default=30, ge=1, le=1000, description="readiness probe failures before giving up"
    )
    environment_variables: dict[str, str] = Field(default_factory=dict)
    identity: str | None = Field(
        default=None,
        description="resource id of a user-assigned managed identity (default: system-assigned)",
    )
    repository: str | None = Field(
        default=None, description="repository in the workspace's registry; default project name"
    )
    registry_auth: Literal["auto", "admin", "token"] = Field(
        default="auto",
        description="auto: ACR admin credentials from the workspace keys when enabled, else an "
        "ACR token exchanged for the Azure AD token",
    )
    keep_previous: bool = Field(
        default=True,
        description="keep the previous deployment (at 0% traffic, still billed) for rollback",
    )
    tags: dict[str, str] = Field(default_factory=dict, description="extra tags on resources")
    # batch endpoints (batch.py): the job runs on an Azure ML compute cluster
    batch_compute: str | None = Field(
        default=None, min_length=2, description="compute cluster (AmlCompute) for batch jobs"
    )
    batch_endpoint_name: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="batch endpoint; default <endpoint>-batch"
    )
    batch_instance_count: int = Field(default=1, ge=1, le=MAX_INSTANCES, description="nodes")
    batch_mini_batch_size: int = Field(
        default=10, ge=1, le=10_000, description="input files per run() call of the driver"
    )
    batch_max_concurrency_per_instance: int = Field(default=1, ge=1, le=64)
    batch_max_retries: int = Field(default=3, ge=0, le=100, description="retries of a mini-batch")
    batch_timeout_seconds: int = Field(
        default=300, ge=1, le=86_400, description="timeout of one mini-batch's run()"
    )
    batch_error_threshold: int = Field(
        default=0, ge=-1, description="failed files before the job fails (-1: never fails)"
    )
    batch_output_action: Literal["summary_only", "append_row"] = Field(
        default="summary_only",
        description="summary_only: only the driver's output files; append_row: also "
        "batch_output_file_name listing each scored file",
    )
    batch_output_file_name: str = Field(default="predictions.csv", min_length=1)
    poll_interval: float = Field(default=10.0, gt=0, le=300, description="seconds between polls")
    retries: int = Field(default=10, ge=0, le=50, description="retries on 429/5xx (azure-core)")
    retry_backoff: float = Field(default=0.8, ge=0, le=60, description="backoff factor, seconds")
    cloud: str = Field(
        default="AzureCloud",
        description="AzureCloud, AzureUSGovernment, AzureChinaCloud, or a name for the custom "
        "cloud given by resource_manager_endpoint",
    )
    resource_manager_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+/?$",
        description="ARM endpoint of a custom or sovereign cloud (Azure Stack, private clouds)",
    )
    active_directory_endpoint: str = Field(
        default="https://login.microsoftonline.com/",
        description="authority of the custom cloud (with resource_manager_endpoint)",
    )

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = [k for k in value if k.lower().startswith("deployer-")]
        if reserved:
            raise ValueError(f"tags starting with 'deployer-' are reserved ({', '.join(reserved)})")
        return value


def concurrency(options: AzureOptions, workers: int | None) -> int:
    """The deployment's ``max_concurrent_requests_per_instance``: the option when set,
    else ``CONCURRENT_REQUESTS_PER_WORKER`` per serving worker (1 when unknown)."""
    if options.max_concurrent_requests_per_instance is not None:
        return options.max_concurrent_requests_per_instance
    return CONCURRENT_REQUESTS_PER_WORKER * max(1, workers or 1)
