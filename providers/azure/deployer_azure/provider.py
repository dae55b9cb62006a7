"""The ``azureml`` provider: an Azure ML managed online endpoint, one deployment per version.

For project P and target T the endpoint is ``P-T`` (or ``endpoint_name``); each release
is a deployment ``v<version>`` running the image from the workspace's registry. Both
carry the tags ``deployer-project``, ``deployer-target`` (and deployments
``deployer-version``), so the cloud tells what is deployed: the live version is the
deployment with the most traffic.

``deploy`` makes sure the endpoint exists and starts creating the new deployment;
``wait`` polls its provisioning, smoke-tests it through the scoring URI (targeted with
the ``azureml-model-deployment`` header) and then moves traffic per the strategy (see
rollout.py), checking health after every step. A failed provisioning or health check
leaves (or puts) all traffic on the previous deployment and deletes the new one. After
promotion the previous deployment is kept at 0% for ``rollback`` (``keep_previous``);
older ones are deleted.

Limits the core reads (getattr, default None) to fit the router and the push timeout to
the cloud: ``request_timeout_seconds`` (the deployment's ``request_timeout_ms``, which
Azure caps at 180 s and answers 408 past), ``max_request_bytes`` (Azure's 1.5 MB request
payload limit; it answers 413 past) and ``rollout_allowance_seconds`` (what a rollout step
takes besides its bake: an online deployment's provisioning, VM and image pull, commonly
takes 5-15 minutes; a traffic update a minute or two).

This class is a facade: each method delegates to the module holding its logic (plan,
registry, deploy, waiting, promote, status, invoke, destroy, backends), all sharing one
``Workspace`` (workspace.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

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
    monitoring,
    parse_options,
)
from deployer.providers import batch as sdk_batch
from deployer_azure import backends, deploy, destroy, invoke, plan, registry, status, waiting
from deployer_azure.options import AzureOptions, concurrency
from deployer_azure.scoring import ScoringSecret
from deployer_azure.workspace import Workspace


class AzureMLProvider:
    """Deploys to an Azure ML managed online endpoint (see the module docstring)."""

    name: ClassVar[str] = "azureml"
    # a managed endpoint: one fixed invoke URL, health from the control plane
    managed: ClassVar[bool] = True
    default_router_auth: ClassVar[str | None] = "azure-key"
    # Azure ML managed online endpoints refuse request payloads over 1.5 MB with 413 ("Your
    # request payload is larger than 1.5 megabytes": MicrosoftDocs/azure-docs,
    # articles/machine-learning/how-to-troubleshoot-managed-online-endpoints.md, commit
    # 00b64da8; the page's successor in MicrosoftDocs/azure-ai-docs,
    # how-to-troubleshoot-online-endpoints.md, commit 112100ce, no longer lists the 413).
    # Read as 1.5 MiB, as the Vertex provider reads Google's "1.5 MB".
    max_request_bytes: ClassVar[int] = 1_572_864
    # time a rollout step needs besides its bake (provisioning a deployment's instances)
    rollout_allowance_seconds: ClassVar[float] = 900.0

    @classmethod
    def router_signer(cls, backend: RouterBackend) -> Signer:
        """The built-in router's signer for this provider's backends (router_auth.py):
        the endpoint's key or token fetched with ``scoring_secret`` from the workspace
        named by the backend's ``target`` options, a Microsoft Entra token
        (``auth.source: entra``), or a key from the variable named by ``auth.key_env``."""
        from deployer_azure.router_auth import signer_for_backend

        return signer_for_backend(cls, backend)

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        options = parse_options(AzureOptions, target)
        # serving.workers, when the core passes it (ProjectInfo.workers); else 1 worker
        workers = getattr(project, "workers", None)
        self.options = options.model_copy(
            update={"max_concurrent_requests_per_instance": concurrency(options, workers)}
        )
        self.target = target
        self.project = project.name
        self.workspace = Workspace(self.options, project.name, target.name)
        self.endpoint = self.workspace.endpoint

    @property
    def request_timeout_seconds(self) -> float:
        """The deployment's own request timeout (``request_timeout_ms``, at most 180 s):
        Azure answers 408 past it, so a caller waiting longer waits for nothing."""
        return self.options.request_timeout_ms / 1000

    def alerts(self) -> Any:
        """Azure Monitor metric alerts on this endpoint: ``deployer alerts render --to``,
        and ``monitoring.alerts.apply`` PUTs them into the resource group (alerts.py)."""
        from deployer_azure.alerts import AzureAlerts

        return AzureAlerts(self.workspace)

    @property
    def _scoring(self) -> ScoringSecret | None:
        """The scoring secret ``invoke`` caches (tests reset it)."""
        return self.workspace.scoring

    @_scoring.setter
    def _scoring(self, secret: ScoringSecret | None) -> None:
        self.workspace.scoring = secret

    # -- the provider protocol -------------------------------------------------------------

    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        """What a push would change; Azure ML splits traffic in whole percent, so every
        strategy runs (no ``problems``)."""
        return plan.plan(self.workspace, release)

    def publish(self, image: Image, progress: Progress) -> str:
        """Push to the workspace's container registry; return ``repo@sha256:...``."""
        return registry.publish(self.workspace, image, progress)

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        return deploy.deploy(self.workspace, release, image_ref, strategy, progress)

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        """Provisioning, then the strategy's traffic steps with health checks; see the module."""
        return waiting.wait(self.workspace, deployment, timeout, progress)

    def status(self) -> Status:
        return status.status(self.workspace)

    def invoke(
        self,
        body: bytes,
        content_type: str,
        accept: str | None = None,
        *,
        deployment: str | None = None,
    ) -> Invocation:
        """POST the scoring URI with the endpoint's key (or token), as any client would."""
        return invoke.invoke(self.workspace, body, content_type, accept, deployment)

    def rollback(self, progress: Progress) -> Deployment:
        """All traffic back to the previous deployment (kept at 0% since the promotion)."""
        return deploy.rollback(self.workspace, progress)

    def destroy(self, progress: Progress) -> list[str]:
        """Delete the endpoint (and with it its deployments), if it is this target's."""
        return destroy.destroy(self.workspace, progress)

    def route(self) -> Backend:
        return backends.route(self.workspace, self.name)

    # -- capture (capture.py, captured.py) --------------------------------------------------

    def captured(self, since: datetime | None = None) -> Iterator[monitoring.CapturedRecord]:
        """What the deployments' data collector logged at or after ``since`` (captured.py)."""
        from deployer_azure.captured import captured

        return captured(self.workspace, since)

    # -- batch (batch.py) ---------------------------------------------------------------------

    def batch_submit(
        self, release: Release, image_ref: str, spec: sdk_batch.BatchSpec, progress: Progress
    ) -> sdk_batch.BatchJob:
        """A job on the target's batch endpoint (a batch deployment of the image)."""
        from deployer_azure import batch

        return batch.submit(self.workspace, release, image_ref, spec, progress)

    def batch_status(self, job_id: str) -> sdk_batch.BatchJob:
        from deployer_azure import batch

        return batch.status(self.workspace, job_id)

    def batch_logs(self, job_id: str) -> Iterator[str]:
        from deployer_azure import batch

        return batch.logs(self.workspace, job_id)

    def batch_cancel(self, job_id: str) -> sdk_batch.BatchJob:
        from deployer_azure import batch

        return batch.cancel(self.workspace, job_id)

    # -- for the router's signer (router_auth.py) -------------------------------------------

    def scoring_secret(self, endpoint: str | None = None) -> ScoringSecret:
        """What a client of the endpoint's scoring URI sends as ``Authorization: Bearer``,
        from ``online_endpoints.get_keys``: the primary key (auth_mode ``key``; keys do
        not expire but can be regenerated), or an endpoint token (``aml_token``) with its
        expiry and the service's refresh-after time. ``endpoint`` defaults to this
        target's endpoint. The secret is kept out of the object's repr."""
        return invoke.scoring_secret(self.workspace, endpoint)

    def find_endpoint(self, scoring_uri: str) -> str | None:
        """The name of the workspace's online endpoint whose scoring URI is ``scoring_uri``
        (the router knows a backend by its URL, not by project), or None. Only a name is
        returned: ``scoring_secret`` reports the URI."""
        return backends.find_endpoint(self.workspace, scoring_uri)
