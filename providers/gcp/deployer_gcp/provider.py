"""The ``vertex`` provider: Vertex AI online prediction endpoints, images in Artifact Registry.

For project P and target T deployer owns, all labelled ``deployer-project=P`` and
``deployer-target=T``:
- one Endpoint (display name ``P-T`` or ``endpoint_name``), also labelled with the live
  version (``deployer-version``) and the one before it (``deployer-previous``);
- one Model per version (``P-T-VERSION``, labelled ``deployer-version``), the serving
  container declaring the image's Vertex routes; the live and the previous ones are kept;
- one DeployedModel per version on the endpoint, its display name the version. The
  live version is the deployed model with the most traffic.

This class is a facade: each method delegates to the module holding its logic, all of
them sharing one ``Scope`` (deployer_gcp.scope). ``deploy`` uploads the model and starts
the DeployModel operation with the strategy's first traffic split; ``wait`` follows the
operation, then the remaining steps (deployer_gcp.waiting, deployer_gcp.rollout).
Nothing here imports google-cloud-aiplatform at module level.

The cloud's limits, read by the orchestrator and router (deployer_gcp.limits):
``request_timeout_seconds`` is the 60 s inference timeout of a shared public endpoint;
``max_request_bytes`` its 1.5 MB request body limit; ``rollout_allowance_seconds`` the
time a rollout step may need besides its bake (the DeployModel provisioning).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from deployer.providers import (
    Backend,
    Deployment,
    Image,
    Invocation,
    Plan,
    Progress,
    ProjectInfo,
    Release,
    RouterBackend,
    Signer,
    Status,
    Strategy,
    Target,
    parse_options,
)
from deployer.providers.batch import BatchJob, BatchSpec
from deployer.providers.monitoring import CapturedRecord
from deployer_gcp import (
    batch,
    captured,
    deploy,
    destroy,
    invoke,
    limits,
    plan,
    registry,
    rollback,
    status,
    waiting,
)
from deployer_gcp.options import VertexOptions
from deployer_gcp.scope import Scope

if TYPE_CHECKING:
    from deployer_gcp.api import VertexApi


class VertexProvider:
    """Deploys to a Vertex AI endpoint (see the module docstring)."""

    name: ClassVar[str] = "vertex"
    # a managed endpoint: one fixed invoke URL, health from the control plane
    managed: ClassVar[bool] = True
    default_router_auth: ClassVar[str | None] = "google-oauth"
    request_timeout_seconds: ClassVar[float] = limits.REQUEST_TIMEOUT_SECONDS
    max_request_bytes: ClassVar[int] = limits.MAX_REQUEST_BYTES
    rollout_allowance_seconds: ClassVar[float] = limits.ROLLOUT_ALLOWANCE_SECONDS

    @classmethod
    def router_signer(cls, backend: RouterBackend) -> Signer:
        """The built-in router's signer for this provider's backends: ADC access tokens."""
        from deployer_gcp.router_auth import GoogleTokenSigner

        return GoogleTokenSigner()

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        self.options = parse_options(VertexOptions, target)
        self.target = target
        self.info = project
        self.project = project.name
        self.scope = Scope(self.options, project.name, target.name)
        self.owner = self.scope.owner

    @property
    def credentials(self) -> Any:
        """Application Default Credentials (resolved on first use)."""
        return self.scope.credentials

    @property
    def api(self) -> VertexApi:
        """The VertexApi (created on first use: it imports google-cloud-aiplatform)."""
        return self.scope.api

    # -- the provider protocol ---------------------------------------------------------

    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        """What a push would change; Vertex splits traffic in whole percent, so every
        strategy runs; ``problems``: what request-response logging cannot capture."""
        return plan.plan(self.scope, release)

    def publish(self, image: Image, progress: Progress) -> str:
        image_name = self.options.image_name or self.project
        return registry.publish(
            image, self.options.registry_path(), image_name, self.credentials, progress
        )

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        return deploy.deploy(self.scope, release, image_ref, strategy, progress)

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        return waiting.wait(self.scope, deployment, timeout, progress)

    def alerts(self) -> Any:
        """Cloud Monitoring alert policies on this endpoint (``deployer alerts render``; a
        push with ``monitoring.alerts.apply`` creates or updates them)."""
        from deployer_gcp.alerts import VertexAlerts

        return VertexAlerts(self.scope)

    def status(self) -> Status:
        return status.with_annotations(self.scope, status.status(self.scope))

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        """POST ``body`` through rawPredict (``accept`` is not sent: see invoke.py)."""
        return invoke.invoke(self.scope, body, content_type)

    def rollback(self, progress: Progress) -> Deployment:
        return rollback.rollback(self.scope, progress)

    def destroy(self, progress: Progress) -> list[str]:
        return destroy.destroy(self.scope, progress)

    def captured(self, since: datetime | None = None) -> Iterator[CapturedRecord]:
        """What the endpoint's request-response logging wrote to BigQuery (captured.py)."""
        return captured.captured(self.scope, since)

    # -- batch prediction (deployer_gcp.batch) --------------------------------------------

    def batch_submit(
        self, release: Release, image_ref: str, spec: BatchSpec, progress: Progress
    ) -> BatchJob:
        """Start a BatchPredictionJob on the release's Model (gs:// in and out)."""
        return batch.submit(self.scope, release, image_ref, spec, progress)

    def batch_status(self, job_id: str) -> BatchJob:
        return batch.status(self.scope, job_id)

    def batch_logs(self, job_id: str) -> Iterator[str]:
        return batch.logs(self.scope, job_id)

    def batch_cancel(self, job_id: str) -> BatchJob:
        return batch.cancel(self.scope, job_id)

    def route(self) -> Backend:
        endpoint = self.scope.require_endpoint()
        url = self.scope.url(endpoint.name)
        return Backend(
            self.target.name, self.name, url, auth="google-oauth", region=self.options.region
        )
