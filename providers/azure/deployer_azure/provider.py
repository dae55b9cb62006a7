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
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

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
    parse_options,
)
from deployer_azure import client, names, registry, rollout, scoring, specs
from deployer_azure.auth import azure_errors
from deployer_azure.options import NAME_PATTERN, AzureOptions
from deployer_azure.scoring import ScoringSecret

SUCCEEDED = "succeeded"
FAILED_STATES = ("failed", "canceled")
MAX_DEPLOYMENTS = 20
LOG_LINES = 30


class AzureMLProvider:
    """Deploys to an Azure ML managed online endpoint (see the module docstring)."""

    name: ClassVar[str] = "azureml"
    # a managed endpoint: one fixed invoke URL, health from the control plane
    managed: ClassVar[bool] = True
    default_router_auth: ClassVar[str | None] = "azure-key"

    @classmethod
    def router_signer(cls, backend: RouterBackend) -> Signer:
        """The built-in router's signer for this provider's backends (router_auth.py):
        the endpoint's key or token fetched with ``scoring_secret`` from the workspace
        named by the backend's ``target`` options, a Microsoft Entra token
        (``auth.source: entra``), or a key from the variable named by ``auth.key_env``."""
        from deployer_azure.router_auth import signer_for_backend

        return signer_for_backend(cls, backend)

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        self.options = parse_options(AzureOptions, target)
        self.target = target
        self.project = project.name
        self.endpoint = names.endpoint_name(project.name, target.name, self.options.endpoint_name)
        self.workspace_scope = (
            f"/subscriptions/{self.options.subscription_id}/resourceGroups/"
            f"{self.options.resource_group}/providers/Microsoft.MachineLearningServices/"
            f"workspaces/{self.options.workspace}"
        )
        self.scope = self._endpoint_scope(self.endpoint)
        self._credential: Any = None
        self._ml: Any = None
        self._pollers: dict[str, Any] = {}
        self._scoring: ScoringSecret | None = None  # for invoke: scoring URI, key or token

    # -- clients -------------------------------------------------------------------------

    @property
    def credential(self) -> Any:
        if self._credential is None:
            self._credential = client.credential()
        return self._credential

    @property
    def ml(self) -> Any:
        if self._ml is None:
            with azure_errors("connecting to the workspace", self.scope):
                self._ml = client.ml_client(self.options, self.credential)
        return self._ml

    def _endpoint_scope(self, endpoint: str) -> str:
        return f"{self.workspace_scope}/onlineEndpoints/{endpoint}"

    # -- reading the cloud ---------------------------------------------------------------

    def _tags(self, **extra: str) -> dict[str, str]:
        return specs.resource_tags(self.options, self.project, self.target.name, **extra)

    def _ours(self, resource: Any) -> bool:
        tags = getattr(resource, "tags", None) or {}
        return bool(
            tags.get(names.TAG_PROJECT) == self.project
            and tags.get(names.TAG_TARGET) == self.target.name
        )

    def _get_endpoint(self, name: str | None = None) -> Any | None:
        """The endpoint (with every deployment in its traffic map), or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.ml.online_endpoints.get(name or self.endpoint)
        except ResourceNotFoundError:
            return None

    def _owned_endpoint(self) -> Any | None:
        endpoint = self._get_endpoint()
        if endpoint is not None and not self._ours(endpoint):
            raise UsageError(
                f"endpoint {self.endpoint} exists but is not tagged for project {self.project}, "
                f"target {self.target.name}; deployer leaves it alone",
                hint=f"choose another name with targets.{self.target.name}.endpoint_name",
            )
        return endpoint

    def _deployments(self) -> dict[str, Any]:
        """This target's deployments on the endpoint, by name."""
        listed = self.ml.online_deployments.list(self.endpoint)
        return {d.name: d for d in listed if self._ours(d)}

    def _deployment(self, name: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.ml.online_deployments.get(name, self.endpoint)
        except ResourceNotFoundError:
            return None

    @staticmethod
    def _traffic(endpoint: Any | None) -> dict[str, int]:
        if endpoint is None:
            return {}
        return {k: int(v) for k, v in (endpoint.traffic or {}).items()}

    @staticmethod
    def _version(deployment: Any | None) -> str | None:
        if deployment is None:
            return None
        return (deployment.tags or {}).get(names.TAG_VERSION)

    # -- changing the cloud --------------------------------------------------------------

    def _set_traffic(self, traffic: dict[str, int], progress: Progress) -> None:
        progress(f"traffic: {rollout.describe(traffic)}")
        endpoint = self.ml.online_endpoints.get(self.endpoint)
        endpoint.traffic = dict(traffic)
        self.ml.online_endpoints.begin_create_or_update(endpoint).result()

    def _delete_deployment(self, name: str, progress: Progress) -> str | None:
        """Delete one deployment; returns why it failed, if it did."""
        from azure.core.exceptions import HttpResponseError

        progress(f"deleting deployment {name}")
        try:
            self.ml.online_deployments.begin_delete(name, self.endpoint).result()
        except HttpResponseError as exc:
            return exc.message.splitlines()[0] if exc.message else str(exc)
        return None

    def _retire(self, keep: set[str], progress: Progress) -> None:
        """Delete this target's deployments that are not in ``keep`` and get no traffic."""
        traffic = self._traffic(self._get_endpoint())
        for name in self._deployments():
            if name not in keep and traffic.get(name, 0) == 0:
                self._delete_deployment(name, progress)

    def _make_room(self, keep: set[str], progress: Progress) -> None:
        """Stay under Azure's 20 deployments per endpoint by retiring unused ones."""
        listed = list(self.ml.online_deployments.list(self.endpoint))
        if len(listed) >= MAX_DEPLOYMENTS:
            self._retire(keep, progress)

    # -- the provider protocol -------------------------------------------------------------

    def plan(self, release: Release) -> Plan:
        new = names.deployment_name(release.version)
        changes: list[Change] = []
        with azure_errors("planning", self.scope):
            endpoint = self._owned_endpoint()
            deployments = self._deployments() if endpoint is not None else {}
        traffic = self._traffic(endpoint)
        live = rollout.live_deployment(traffic)
        live_version = self._version(deployments.get(live)) if live else None
        image = f"image {release.image.ref}, {self.options.instance_count} x "
        image += self.options.instance_type
        if endpoint is None:
            changes.append(
                Change("create", f"endpoint {self.endpoint}", f"auth {self.options.auth_mode}")
            )
        if live_version == release.version:
            changes.append(Change("keep", f"deployment {new}", "already serving this version"))
            return Plan(self.target.name, changes)
        changes.append(Change("create", f"deployment {new}", image))
        changes.append(
            Change(
                "update",
                f"endpoint {self.endpoint}",
                f"traffic {live or 'none'} -> {new}" + (f" ({live_version})" if live else ""),
            )
        )
        keep = {new, live} if self.options.keep_previous else {new}
        for name in deployments:
            if name not in keep and name != live:
                changes.append(Change("delete", f"deployment {name}", "no longer needed"))
        if live and not self.options.keep_previous:
            changes.append(Change("delete", f"deployment {live}", "keep_previous is false"))
        return Plan(self.target.name, changes)

    def publish(self, image: Image, progress: Progress) -> str:
        """Push to the workspace's container registry; return ``repo@sha256:...``."""
        from deployer.providers import docker_client, push_image

        with azure_errors("looking up the workspace's container registry", self.scope):
            acr = registry.acr_target(
                self.ml, client.arm_client(self.options, self.credential), self.options,
                self.credential,
            )  # fmt: skip
        repository = f"{acr.login_server}/{self.options.repository or self.project}"
        progress(f"pushing to {repository} ({acr.method} credentials)")
        return push_image(docker_client(), image.id, repository, image.version, acr.auth, progress)

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        new = names.deployment_name(release.version)
        with azure_errors(f"deploying {new} to endpoint {self.endpoint}", self.scope):
            endpoint = self._owned_endpoint()
            deployments = self._deployments() if endpoint is not None else {}
            live = rollout.live_deployment(self._traffic(endpoint))
            previous = self._version(deployments.get(live)) if live else None
            details: dict[str, Any] = {
                "endpoint": self.endpoint,
                "deployment": new,
                "previous_deployment": live,
                "strategy": strategy.kind,
                "percent": strategy.percent,
                "bake_seconds": strategy.bake_seconds,
                "sample": release.sample,
            }
            if previous == release.version and self.status().healthy:
                progress(f"{self.target.name}: version {release.version} is already live ({new})")
                return Deployment(self.target.name, release.version, previous, False, details)
            if endpoint is None:
                progress(f"creating endpoint {self.endpoint}")
                spec = specs.endpoint_entity(self.options, self.endpoint, self._tags())
                self.ml.online_endpoints.begin_create_or_update(spec).result()
            else:
                self._make_room({new, *([live] if live else [])}, progress)
            progress(
                f"creating deployment {new} ({self.options.instance_count} x "
                f"{self.options.instance_type}) from {image_ref}"
            )
            tags = self._tags(
                **{
                    names.TAG_VERSION: release.version,
                    names.TAG_IMAGE: image_ref[:256],
                    names.TAG_CREATED: specs.now_tag(),
                }
            )
            spec = specs.deployment_entity(self.options, self.endpoint, new, image_ref, tags)
            self._pollers[new] = self.ml.online_deployments.begin_create_or_update(spec)
        return Deployment(self.target.name, release.version, previous, True, details)

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        """Provisioning, then the strategy's traffic steps with health checks; see the module."""
        deadline = time.monotonic() + timeout
        if not deployment.changed:
            return self._wait_healthy(deadline, timeout, progress)
        details = deployment.details
        new = str(details["deployment"])
        old = details.get("previous_deployment")
        old = None if old == new else old
        strategy = Strategy(details["strategy"], details["percent"], details["bake_seconds"])
        with azure_errors(f"waiting for deployment {new}", self.scope):
            outcome, seen = self._wait_provisioned(new, deadline, progress)
            if outcome == "timeout":
                return Status(
                    self.target.name,
                    "unhealthy",
                    deployment.previous_version,
                    reason=f"timed out after {_seconds(timeout)} waiting for deployment {new} "
                    f"to provision; last provisioning state: {seen}",
                )
            if outcome == "failed":
                return self._abandon(deployment, new, seen, progress, traffic_moved=False)
            problem = self._check(new, details.get("sample"))
            if problem:
                return self._abandon(deployment, new, problem, progress, traffic_moved=False)
            steps = rollout.traffic_steps(strategy, new, old)
            for index, traffic in enumerate(steps):
                self._set_traffic(traffic, progress)
                if index == len(steps) - 1:
                    break
                bake = min(strategy.bake_seconds, max(0.0, deadline - time.monotonic()))
                if bake:
                    progress(f"baking {bake:.0f}s at {traffic[new]}% on {new}")
                    time.sleep(bake)
                problem = self._check(new, details.get("sample"))
                if problem:
                    return self._abandon(
                        deployment, new, problem, progress, traffic_moved=True, old=old
                    )
            keep = {new, old} if (old and self.options.keep_previous) else {new}
            self._retire({n for n in keep if n}, progress)
        return self._wait_healthy(deadline, timeout, progress)

    def _wait_provisioned(self, name: str, deadline: float, progress: Progress) -> tuple[str, str]:
        """("succeeded" | "failed" | "timeout", the last state or the failure reason)."""
        last = ""
        started = time.monotonic()
        while True:
            found = self._deployment(name)
            current = specs.state(found.provisioning_state) if found is not None else "Missing"
            if current != last:
                progress(f"deployment {name}: {current} ({time.monotonic() - started:.0f}s)")
                last = current
            if current.lower() == SUCCEEDED:
                return "succeeded", current
            if current.lower() in FAILED_STATES or found is None:
                return "failed", self._failure_reason(name, current, deadline)
            if time.monotonic() + self.options.poll_interval > deadline:
                return "timeout", current
            time.sleep(self.options.poll_interval)

    def _failure_reason(self, name: str, current: str, deadline: float) -> str:
        """The provisioning error (from the LRO, when this process started it) and logs."""
        from azure.core.exceptions import HttpResponseError

        reason = f"provisioning state {current}"
        poller = self._pollers.pop(name, None)
        if poller is not None:
            try:
                poller.result(timeout=max(1.0, min(30.0, deadline - time.monotonic())))
            except HttpResponseError as exc:
                error = getattr(exc, "error", None)
                message = getattr(error, "message", None) or exc.message or str(exc)
                code = getattr(error, "code", None)
                reason = f"{code}: {message}" if code else message
        try:
            logs = self.ml.online_deployments.get_logs(name, self.endpoint, lines=LOG_LINES)
        except HttpResponseError:
            logs = ""
        if logs.strip():
            reason += "\n  last log lines:\n" + "\n".join(
                f"    {line}" for line in logs.strip().splitlines()[-LOG_LINES:]
            )
        return reason

    def _check(self, name: str, sample: Any) -> str | None:
        """None if ``name`` is provisioned and answers a prediction; else what is wrong."""
        found = self._deployment(name)
        current = specs.state(found.provisioning_state) if found is not None else "Missing"
        if current.lower() != SUCCEEDED:
            return f"deployment {name} is {current}"
        body = json.dumps(sample if sample is not None else [[0]]).encode()
        answer = self.invoke(body, "application/json", "application/json", deployment=name)
        if answer.status != 200:
            text = answer.body[:300].decode(errors="replace")
            return f"a smoke prediction on {name} answered {answer.status}: {text}"
        try:
            json.loads(answer.body)["predictions"]
        except (ValueError, KeyError, TypeError):
            return f"a smoke prediction on {name} returned {answer.body[:200]!r}"
        return None

    def _abandon(
        self,
        deployment: Deployment,
        new: str,
        problem: str,
        progress: Progress,
        *,
        traffic_moved: bool,
        old: str | None = None,
    ) -> Status:
        """Put all traffic back on ``old`` (if it had moved), delete ``new``, say so."""
        previous = deployment.previous_version
        actions = []
        if traffic_moved and old:
            self._set_traffic({old: 100}, progress)
            actions.append(f"rolled back: traffic 100% to {old} ({previous})")
        elif previous:
            actions.append(f"the previous version {previous} keeps serving")
        else:
            actions.append("nothing was serving before")
        failed_delete = self._delete_deployment(new, progress)
        actions.append(
            f"deployment {new} deleted"
            if failed_delete is None
            else f"deployment {new} could not be deleted ({failed_delete})"
        )
        head, _, tail = problem.partition("\n")
        reason = f"deployment {new} (version {deployment.version}) failed: {head}"
        reason += f"; {'; '.join(actions)}" + (f"\n{tail}" if tail else "")
        return Status(self.target.name, "failed", previous, reason=reason)

    def _wait_healthy(self, deadline: float, timeout: float, progress: Progress) -> Status:
        status = self.status()
        while not status.healthy and time.monotonic() + self.options.poll_interval <= deadline:
            if status.state == "failed":
                return status
            time.sleep(self.options.poll_interval)
            status = self.status()
        if status.healthy or status.state == "failed":
            return status
        return Status(
            self.target.name,
            "unhealthy",
            status.version,
            status.url,
            f"timed out after {_seconds(timeout)}; last state: {status.state} ({status.reason})",
            status.details,
        )

    def status(self) -> Status:
        with azure_errors(f"reading endpoint {self.endpoint}", self.scope):
            endpoint = self._get_endpoint()
            if endpoint is None:
                return Status(
                    self.target.name, "absent", reason=f"endpoint {self.endpoint} does not exist"
                )
            if not self._ours(endpoint):
                return Status(
                    self.target.name,
                    "absent",
                    reason=f"endpoint {self.endpoint} is not managed by deployer for this target",
                )
            traffic = self._traffic(endpoint)
            live = rollout.live_deployment(traffic)
            found = self._deployment(live) if live else None
        version = self._version(found)
        details = {
            "endpoint": self.endpoint,
            "traffic": traffic,
            "location": endpoint.location,
            "deployment": live,
        }
        url = endpoint.scoring_uri
        endpoint_state = specs.state(endpoint.provisioning_state).lower()
        if endpoint_state in FAILED_STATES:
            reason = f"endpoint {self.endpoint} is {endpoint_state}"
            return Status(self.target.name, "failed", version, url, reason, details)
        if endpoint_state != SUCCEEDED:
            reason = f"endpoint {self.endpoint} is {endpoint_state}"
            return Status(self.target.name, "updating", version, url, reason, details)
        if found is None:
            reason = "no deployment receives traffic"
            return Status(self.target.name, "unhealthy", None, url, reason, details)
        deployment_state = specs.state(found.provisioning_state)
        if deployment_state.lower() == SUCCEEDED:
            return Status(self.target.name, "healthy", version, url, details=details)
        reason = f"deployment {live} is {deployment_state}"
        if deployment_state.lower() in FAILED_STATES:
            return Status(self.target.name, "failed", version, url, reason, details)
        return Status(self.target.name, "updating", version, url, reason, details)

    def invoke(
        self,
        body: bytes,
        content_type: str,
        accept: str | None = None,
        *,
        deployment: str | None = None,
    ) -> Invocation:
        """POST the scoring URI with the endpoint's key (or token), as any client would."""
        import httpx

        for attempt in range(2):
            uri, secret = self._scoring_access(refresh=attempt > 0)
            headers = {"authorization": f"Bearer {secret}", "content-type": content_type}
            if accept:
                headers["accept"] = accept
            if deployment:
                headers[names.DEPLOYMENT_HEADER] = deployment
            try:
                response = httpx.post(
                    uri,
                    content=body,
                    headers=headers,
                    timeout=self.options.request_timeout_ms / 1000 + 15,
                    verify=client.ca_verify(),
                )
            except httpx.HTTPError as exc:
                raise DeployerError(
                    f"could not reach the scoring URI {uri}: {type(exc).__name__}: {exc}",
                    hint=f"deployer status --to {self.target.name}",
                ) from None
            if response.status_code != 401 or attempt:
                return Invocation(
                    response.status_code,
                    response.content,
                    response.headers.get("content-type", ""),
                )
        raise AssertionError("unreachable")

    def _scoring_access(self, refresh: bool = False) -> tuple[str, str]:
        """The scoring URI and a key (auth_mode key) or token (aml_token), cached until
        the token is about to expire."""
        secret = self._scoring
        if secret is None or refresh or secret.expired():
            secret = self._scoring = self.scoring_secret()
        return secret.scoring_uri, secret.value

    def scoring_secret(self, endpoint: str | None = None) -> ScoringSecret:
        """What a client of the endpoint's scoring URI sends as ``Authorization: Bearer``,
        from ``online_endpoints.get_keys``: the primary key (auth_mode ``key``; keys do
        not expire but can be regenerated), or an endpoint token (``aml_token``) with its
        expiry and the service's refresh-after time. ``endpoint`` defaults to this
        target's endpoint. The secret is kept out of the object's repr."""
        name = endpoint or self.endpoint
        with azure_errors(f"getting the keys of endpoint {name}", self._endpoint_scope(name)):
            found = self._get_endpoint(name)
            if found is None or not found.scoring_uri:
                raise UsageError(
                    f"endpoint {name} does not exist in workspace {self.options.workspace}",
                    hint=f"deployer push --to {self.target.name}",
                )
            keys = self.ml.online_endpoints.get_keys(name)
        return scoring.from_keys(name, str(found.scoring_uri), keys)

    def find_endpoint(self, scoring_uri: str) -> str | None:
        """The name of the workspace's online endpoint whose scoring URI is ``scoring_uri``
        (the router knows a backend by its URL, not by project): ``endpoint_name`` when
        the options set it, else the endpoint the URL's host names
        (``NAME.REGION.inference.ml.azure.com``), else the one a listing finds; None when
        there is none. Only a name is returned: ``scoring_secret`` reports the URI."""
        if self.options.endpoint_name:
            return self.options.endpoint_name
        label = (urlsplit(scoring_uri).hostname or "").split(".")[0]
        with azure_errors(f"looking for the endpoint of {scoring_uri}", self.workspace_scope):
            if re.fullmatch(NAME_PATTERN, label):
                found = self._get_endpoint(label)
                if found is not None and scoring.same_uri(found.scoring_uri, scoring_uri):
                    return label
            for endpoint in self.ml.online_endpoints.list():
                if scoring.same_uri(endpoint.scoring_uri, scoring_uri):
                    return str(endpoint.name)
        return None

    def rollback(self, progress: Progress) -> Deployment:
        """All traffic back to the previous deployment (kept at 0% since the promotion)."""
        with azure_errors(f"rolling back endpoint {self.endpoint}", self.scope):
            endpoint = self._owned_endpoint()
            if endpoint is None:
                raise UsageError(f"{self.target.name} has nothing deployed to roll back")
            deployments = self._deployments()
            live = rollout.live_deployment(self._traffic(endpoint))
            candidates = [
                d
                for name, d in deployments.items()
                if name != live and specs.state(d.provisioning_state).lower() == SUCCEEDED
            ]
            if not candidates:
                hint = "keep_previous: true keeps the previous deployment for rollback"
                raise UsageError(
                    f"{self.target.name} has no previous version to roll back to", hint=hint
                )
            target = max(candidates, key=lambda d: (d.tags or {}).get(names.TAG_CREATED, ""))
            current = self._version(deployments.get(live)) if live else None
            progress(f"rolling back to {target.name} ({self._version(target)})")
            self._set_traffic({target.name: 100}, progress)
        details = {
            "endpoint": self.endpoint,
            "deployment": target.name,
            "previous_deployment": live,
        }
        return Deployment(self.target.name, self._version(target) or "", current, True, details)

    def destroy(self, progress: Progress) -> list[str]:
        """Delete the endpoint (and with it its deployments), if it is this target's."""
        with azure_errors(f"deleting endpoint {self.endpoint}", self.scope):
            endpoint = self._owned_endpoint()
            if endpoint is None:
                progress(f"endpoint {self.endpoint} does not exist; nothing to remove")
                return []
            deployments = sorted(self._traffic(endpoint))
            progress(f"deleting endpoint {self.endpoint} and {len(deployments)} deployment(s)")
            self.ml.online_endpoints.begin_delete(self.endpoint).result()
        self._scoring = None
        removed = [f"deployment {self.endpoint}/{name}" for name in deployments]
        return [*removed, f"endpoint {self.endpoint}"]

    def route(self) -> Backend:
        with azure_errors(f"reading endpoint {self.endpoint}", self.scope):
            endpoint = self._owned_endpoint()
        if endpoint is None or not endpoint.scoring_uri:
            raise UsageError(
                f"endpoint {self.endpoint} does not exist",
                hint=f"deployer push --to {self.target.name}",
            )
        auth = "azure-key" if self.options.auth_mode == "key" else "azure-token"
        return Backend(self.target.name, self.name, endpoint.scoring_uri, auth, endpoint.location)


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"
