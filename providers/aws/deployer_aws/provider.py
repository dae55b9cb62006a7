"""The ``sagemaker`` provider: ECR for the image, a SageMaker real-time or serverless endpoint.

    targets:
      aws:
        provider: sagemaker
        region: eu-west-1
        role_arn: arn:aws:iam::123456789012:role/SageMakerExecution

boto3 is imported only inside methods, so ``deployer --help`` stays fast.

What the core reads from an instance (``getattr``, default None), from SageMaker's docs:

- ``request_timeout_seconds``: InvokeEndpoint's own timeout, 60 s;
- ``max_request_bytes``: the largest InvokeEndpoint body, 6 MB real-time, 4 MB serverless;
- ``rollout_allowance_seconds``: provisioning time per traffic step besides the bake
  (instances: 600 s, serverless: 300 s), to derive a push timeout from the strategy.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
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
    RouterBackend,
    Signer,
    Status,
    Strategy,
    Target,
    UsageError,
    monitoring,
    parse_options,
)
from deployer.providers import batch as sdk_batch
from deployer_aws import (
    autoscaling,
    batch,
    capture,
    capture_files,
    deploy,
    gpu,
    invoke,
    names,
    registry,
    waiting,
)
from deployer_aws.aws import Aws
from deployer_aws.options import SageMakerOptions

MB = 1024 * 1024
INVOKE_TIMEOUT_SECONDS = 60.0  # InvokeEndpoint: the container must answer within 60 s
MAX_BODY_REAL_TIME = 6 * MB
MAX_BODY_SERVERLESS = 4 * MB


def runtime_domain(region: str) -> str:
    """The DNS suffix of AWS endpoints in ``region``: China regions differ."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


class SageMakerProvider:
    """Deploys one target to a SageMaker endpoint (see the package README)."""

    name: ClassVar[str] = "sagemaker"
    # a managed endpoint: one fixed invoke URL, health from the control plane
    managed: ClassVar[bool] = True
    default_router_auth: ClassVar[str | None] = "sigv4"

    @classmethod
    def router_signer(cls, backend: RouterBackend) -> Signer:
        """The built-in router's signer for this provider's backends: SigV4."""
        from deployer_aws.router_auth import SigV4Signer

        return SigV4Signer(backend.region or "us-east-1", "sagemaker")

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        self.options = parse_options(SageMakerOptions, target)
        self.target = target
        self.info = project
        self.aws = Aws(self.options)
        endpoint = names.endpoint_name(project.name, target.name, self.options.endpoint_name)
        self.repository = self.options.ecr_repository or project.name
        self.scope = deploy.Scope(
            self.aws, self.options, project.name, target.name, endpoint, self.repository
        )
        self.request_timeout_seconds: float = INVOKE_TIMEOUT_SECONDS
        self.max_request_bytes: int = (
            MAX_BODY_SERVERLESS if self.options.serverless is not None else MAX_BODY_REAL_TIME
        )
        self.rollout_allowance_seconds: float = deploy.allowance(self.options)

    @property
    def endpoint(self) -> str:
        return self.scope.endpoint

    def alerts(self) -> Any:
        """CloudWatch alarms on this endpoint (``deployer alerts``, ``alerts.apply``)."""
        from deployer_aws.alerts import SageMakerAlerts

        return SageMakerAlerts(self.aws, self.endpoint)

    def _url(self) -> str:
        base = self.options.endpoint_urls.runtime or (
            f"https://runtime.sagemaker.{self.options.region}.{runtime_domain(self.options.region)}"
        )
        return f"{base.rstrip('/')}/endpoints/{self.endpoint}/invocations"

    # -- the provider protocol ---------------------------------------------------------

    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        """What a push would change; ``problems`` when SageMaker would refuse ``strategy``
        on this endpoint's fleet (canary <= 50%, linear steps 10-50%, whole instances)."""
        changes: list[Change] = []
        if registry.repository_exists(self.aws, self.repository) is None:
            changes.append(Change("create", f"ECR repository {self.repository}"))
        ref = f"{self.repository}:{release.version}"
        changes.append(Change("update", f"image {ref}", "push (layers already there are kept)"))
        endpoint, problems = deploy.plan(
            self.scope, release.version, ref, strategy, release.capture
        )
        changes.extend(endpoint)
        scaling = self.options.autoscaling
        if scaling is not None and not autoscaling.in_sync(self.aws, self.endpoint, scaling):
            detail = f"{scaling.min}..{scaling.max}, {scaling.target_invocations:g}/instance"
            changes.append(Change("update", f"autoscaling {self.endpoint}", detail))
        notes = gpu.notes(self.target.name, self.options, release)
        notes += capture.notes(release.capture, self.target.name)
        return Plan(self.target.name, changes, problems, notes)

    def publish(self, image: Image, progress: Progress) -> str:
        return registry.publish(
            self.aws, image, self.repository, self.info.name, self.target.name, progress
        )

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        return deploy.deploy(
            self.scope,
            release.version,
            image_ref,
            strategy,
            progress,
            release.annotations,
            release.capture,
        )

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        return waiting.wait(self.scope, deployment, timeout, self._url(), progress)

    def status(self) -> Status:
        return waiting.status(self.scope, self._url())

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        if len(body) > self.max_request_bytes:
            kind = "serverless" if self.options.serverless is not None else "real-time"
            raise UsageError(
                f"request body of {len(body)} bytes is larger than the {self.max_request_bytes} "
                f"bytes a SageMaker {kind} endpoint accepts ({self.target.name})",
                hint="send a smaller batch",
            )
        return invoke.invoke(self.aws, self.endpoint, body, content_type, accept, self.target.name)

    def rollback(self, progress: Progress) -> Deployment:
        deployment = deploy.start_rollback(self.scope, progress)
        status = self.wait(deployment, self.options.rollback_timeout, progress)
        if not status.healthy:
            raise DeployerError(f"rollback of {self.target.name} failed: {status.reason}")
        return deployment

    def destroy(self, progress: Progress) -> list[str]:
        removed = deploy.destroy(self.scope, progress)
        if not self.options.keep_ecr_repository_on_destroy and registry.delete_repository(
            self.aws, self.repository, self.info.name
        ):
            removed.append(f"ECR repository {self.repository}")
            progress(f"removed ECR repository {self.repository}")
        return removed

    # -- capture (deployer.providers.monitoring.CapturesPredictions) ----------------------

    def captured(self, since: datetime | None = None) -> Iterator[monitoring.CapturedRecord]:
        """The endpoint's SageMaker capture files at or after ``since`` (capture_files)."""
        return capture_files.Reader(self.scope).records(since)

    # -- batch (deployer.providers.batch.RunsBatch): SageMaker Batch Transform -------------

    def batch_submit(
        self, release: Release, image_ref: str, spec: sdk_batch.BatchSpec, progress: Progress
    ) -> sdk_batch.BatchJob:
        return batch.submit(self.scope, release, image_ref, spec, progress)

    def batch_status(self, job_id: str) -> sdk_batch.BatchJob:
        return batch.status(self.scope, job_id)

    def batch_logs(self, job_id: str) -> Iterator[str]:
        return batch.logs(self.scope, job_id)

    def batch_cancel(self, job_id: str) -> sdk_batch.BatchJob:
        return batch.cancel(self.scope, job_id)

    def route(self) -> Backend:
        return Backend(self.target.name, self.name, self._url(), "sigv4", self.options.region)
