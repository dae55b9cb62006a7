"""The ``vertex`` provider: Vertex AI online prediction endpoints, images in Artifact Registry.

For project P and target T deployer owns, all labelled ``deployer-project=P`` and
``deployer-target=T``:
- one Endpoint (display name ``P-T`` or ``endpoint_name``), also labelled with the live
  version (``deployer-version``) and the one before it (``deployer-previous``);
- one Model per version (``P-T-VERSION``, labelled ``deployer-version``), the serving
  container declaring the image's Vertex routes; the live and the previous ones are kept;
- one DeployedModel per version on the endpoint, its display name the version. The
  live version is the deployed model with the most traffic.

``deploy`` uploads the model and starts the DeployModel operation with the strategy's
first traffic split; ``wait`` follows the operation, then the remaining steps (see
deployer_gcp.rollout). Nothing here imports google-cloud-aiplatform at module level.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, ClassVar

from deployer.providers import (
    Backend,
    Change,
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
    routes,
)
from deployer_gcp import names, traffic
from deployer_gcp.errors import OperationFailed, OperationTimeout, VertexError, translate
from deployer_gcp.names import seconds
from deployer_gcp.options import VertexOptions

LABEL_PREVIOUS = "deployer-previous"
CONTAINER_PORT = routes.DEFAULT_PORT


def _quiet(_message: str) -> None:
    pass


class VertexProvider:
    """Deploys to a Vertex AI endpoint (see the module docstring)."""

    name: ClassVar[str] = "vertex"
    # a managed endpoint: one fixed invoke URL, health from the control plane
    managed: ClassVar[bool] = True
    default_router_auth: ClassVar[str | None] = "google-oauth"

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
        self.owner = names.owner_labels(project.name, target.name)
        self._credentials: Any = None
        self._api: Any = None
        self._say: Progress = _quiet

    # -- plumbing ----------------------------------------------------------------------

    @property
    def credentials(self) -> Any:
        if self._credentials is None:
            from deployer_gcp.credentials import default_credentials

            self._credentials = default_credentials()
        return self._credentials

    @property
    def api(self) -> Any:
        """The VertexApi (created on first use: it imports google-cloud-aiplatform)."""
        if self._api is None:
            from deployer_gcp.api import VertexApi

            self._api = VertexApi(self.options, self.credentials, lambda m: self._say(m))
        return self._api

    def _endpoint(self) -> Any | None:
        """The endpoint deployer created for this project and target (oldest if several)."""
        found = self.api.find_endpoints(self.owner)
        return found[0] if found else None

    def _require_endpoint(self) -> Any:
        endpoint = self._endpoint()
        if endpoint is None:
            raise UsageError(
                f"{self.target.name} has no Vertex AI endpoint in {self.api.parent} yet",
                hint=f"deployer push --to {self.target.name}",
            )
        return endpoint

    def _display(self) -> str:
        return names.endpoint_display_name(
            self.project, self.target.name, self.options.endpoint_name
        )

    def _url(self, endpoint: str) -> str:
        return f"https://{self.api.host}/v1/{endpoint}:rawPredict"

    def _deadline(self) -> float:
        return time.monotonic() + self.options.operation_timeout

    def _labels(self, version: str, previous: str | None) -> dict[str, str]:
        labels = {**self.owner, names.LABEL_VERSION: names.label_value(version)}
        if previous:
            labels[LABEL_PREVIOUS] = names.label_value(previous)
        return labels

    # -- the provider protocol ---------------------------------------------------------

    def plan(self, release: Release) -> Plan:
        changes: list[Change] = []
        endpoint = self._endpoint()
        display = self._display()
        if endpoint is None:
            changes.append(Change("create", f"endpoint {display}", f"in {self.api.parent}"))
        live = traffic.live_deployed_model(endpoint) if endpoint is not None else None
        current = traffic.version_of(live)
        version = release.version
        if current == version:
            changes.append(Change("keep", f"deployed model {version}", "already live"))
            return Plan(self.target.name, changes)
        model = names.model_display_name(self.project, self.target.name, version)
        if self._models(version):
            changes.append(Change("keep", f"model {model}", "already uploaded"))
        else:
            changes.append(Change("create", f"model {model}", f"image {release.image.ref}"))
        low, high = self.options.replicas
        changes.append(
            Change(
                "update",
                f"endpoint {display}",
                f"deploy {version} on {self.options.machine_type} ({low}-{high} replicas); "
                f"traffic {current or 'none'} -> {version}",
            )
        )
        if live is not None:
            changes.append(
                Change(
                    "delete",
                    f"deployed model {current}",
                    "undeployed once the new version has all traffic; its model is kept",
                )
            )
        return Plan(self.target.name, changes)

    def publish(self, image: Image, progress: Progress) -> str:
        from deployer_gcp.registry import publish

        return publish(
            image,
            self.options.registry_path(),
            self.options.image_name or self.project,
            self.credentials,
            progress,
        )

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        self._say = progress
        version = release.version
        endpoint = self._ensure_endpoint(progress)
        live = traffic.live_deployed_model(endpoint)
        previous = traffic.version_of(live)
        details: dict[str, Any] = {"endpoint": endpoint.name, "strategy": str(strategy)}
        if previous == version and len(endpoint.deployed_models) == 1:
            status = self._status_of(endpoint)
            if status.healthy:
                progress(f"{self.target.name}: version {version} is already live")
                return Deployment(self.target.name, version, previous, False, details)
        shares = traffic.steps(strategy) if live is not None else [100]
        if live is None and strategy.kind != "all-at-once":
            progress(f"nothing is live yet: {strategy} deploys {version} with all traffic")
        details.update(
            shares=shares,
            bake_seconds=strategy.bake_seconds,
            sample=release.sample,
            previous_deployed_model=live.id if live is not None else None,
        )
        existing = traffic.find_version(endpoint, version)
        if existing is not None:
            # Left over from an unfinished rollout: move traffic to it instead of redeploying.
            progress(f"{version} is already deployed ({existing.id}); resuming its rollout")
            if existing.id == details["previous_deployed_model"]:
                details["previous_deployed_model"] = None
                shares = details["shares"] = [100]
            details["deployed_model"] = existing.id
            return Deployment(self.target.name, version, previous, True, details)
        model = self._model(release, image_ref, progress)
        others = [dm.id for dm in endpoint.deployed_models]
        split = traffic.split(traffic.NEW, shares[0], details["previous_deployed_model"], others)
        progress(f"deploying {version} to {endpoint.display_name} with traffic split {split}")
        details["operation"] = self.api.deploy_model(
            endpoint.name, self._deployed_model(model, version), split
        )
        return Deployment(self.target.name, version, previous, True, details)

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        from deployer_gcp.rollout import Rollout

        self._say = progress
        started = time.monotonic()
        deadline = started + timeout
        details = deployment.details
        if not deployment.changed or "shares" not in details:
            return self._wait_healthy(deadline, timeout, progress)
        endpoint, version = details["endpoint"], deployment.version
        new_id = details.get("deployed_model")
        if "operation" in details:
            try:
                response = self.api.wait_operation(
                    details["operation"],
                    f"deploying {version}",
                    deadline,
                    progress,
                    self.api.types.DeployModelResponse,
                )
            except OperationFailed as exc:
                reason = f"Vertex AI could not deploy {version}: {exc.reason}"
                return self._failed(reason + self._still_serving(endpoint), exc.operation)
            except OperationTimeout as exc:
                reason = (
                    f"timed out after {seconds(time.monotonic() - started)} waiting for Vertex AI "
                    f"to deploy {version}; last state: the DeployModel operation "
                    f"{exc.operation} is still running (the traffic split changes only when "
                    "it finishes; Vertex may still complete it)"
                )
                return dataclasses.replace(self.status(), state="updating", reason=reason)
            new_id = response.deployed_model.id
        outcome = Rollout(
            api=self.api,
            endpoint=endpoint,
            new_id=str(new_id),
            old_id=details.get("previous_deployed_model"),
            version=version,
            previous_version=deployment.previous_version,
            shares=details["shares"],
            bake_seconds=float(details.get("bake_seconds") or 0.0),
            sample=details.get("sample"),
            deadline=deadline,
            progress=progress,
            started=started,
        ).run(first_step_done="operation" in details)
        if outcome.state == "healthy":
            self._after_promotion(endpoint, version, deployment.previous_version, progress)
            return self.status()
        return dataclasses.replace(self.status(), state=outcome.state, reason=outcome.reason)

    def status(self) -> Status:
        endpoint = self._endpoint()
        if endpoint is None:
            return Status(
                self.target.name,
                "absent",
                reason=f"no Vertex AI endpoint labelled for {self.project}/{self.target.name} "
                f"in {self.api.parent}",
            )
        return self._status_of(endpoint)

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        """POST ``body`` through the endpoint's rawPredict.

        A bare JSON array of rows is sent as ``{"instances": [...]}`` (see payload.py);
        ``accept`` is not sent: rawPredict carries only the body and its content type.
        """
        from google.api_core import exceptions as gexc

        from deployer_gcp.payload import for_vertex

        endpoint = self._require_endpoint()
        try:
            answer = self.api.raw_predict(
                endpoint.name, for_vertex(body, content_type), content_type
            )
        except (gexc.PermissionDenied, gexc.Unauthenticated, gexc.RetryError) as exc:
            raise translate(exc, "predict with", endpoint.name) from None
        except gexc.GoogleAPICallError as exc:
            status = int(exc.code) if exc.code else 500
            error = json.dumps({"error": exc.message}).encode()
            return Invocation(status, error, "application/json")
        return Invocation(200, bytes(answer.data), answer.content_type or "application/json")

    def rollback(self, progress: Progress) -> Deployment:
        """Back to the previous version.

        An unfinished rollout (more than one deployed model) goes back to the last promoted
        version (the endpoint's ``deployer-version`` label) when it is still deployed.
        Otherwise the version promoted before it (``deployer-previous``) gets all traffic:
        shifted when it is still deployed, else redeployed from its kept Model. Every other
        deployed model is then undeployed.
        """
        self._say = progress
        endpoint = self._require_endpoint()
        live = traffic.live_deployed_model(endpoint)
        if live is None:
            raise UsageError(f"nothing is deployed on {self.target.name}; nothing to roll back")
        current = str(live.display_name)
        last = endpoint.labels.get(names.LABEL_VERSION)
        previous = endpoint.labels.get(LABEL_PREVIOUS)
        deployed = {names.label_value(dm.display_name): dm for dm in endpoint.deployed_models}
        deadline = self._deadline()
        if len(deployed) > 1 and last in deployed:
            chosen = deployed[last]
            newer = [dm for dm in traffic.deployed_models(endpoint) if dm.id != chosen.id]
            undone = str(newer[-1].display_name)
            progress(f"stopping the unfinished rollout of {undone}; back to {chosen.display_name}")
            labels = self._labels(str(chosen.display_name), previous)
        elif previous and previous != names.label_value(current):
            chosen = deployed.get(previous) or self._redeploy(endpoint, previous, deadline)
            undone = current
            labels = self._labels(str(chosen.display_name), current)
        else:
            raise UsageError(f"{self.target.name} has no previous version to roll back to")
        version = str(chosen.display_name)
        progress(f"giving all traffic to {version}")
        others = [dm.id for dm in self.api.get_endpoint(endpoint.name).deployed_models]
        self._shift_all(endpoint.name, chosen.id, others, deadline, labels, progress)
        progress(f"{version} serves all traffic again")
        return Deployment(self.target.name, version, undone, True, {"endpoint": endpoint.name})

    def _redeploy(self, endpoint: Any, version_label: str, deadline: float) -> Any:
        """Deploy the kept Model of ``version_label`` with no traffic; its DeployedModel."""
        labels = {**self.owner, names.LABEL_VERSION: version_label}
        models = self.api.find_models(labels)
        if not models:
            raise UsageError(
                f"{self.target.name} has no previous version to roll back to "
                f"(the model of {version_label} is gone)"
            )
        model = models[0]
        version = str(model.labels[names.LABEL_VERSION])
        self._say(f"redeploying {version} from its kept model {model.name}")
        current = dict(endpoint.traffic_split)
        split = {**current, traffic.NEW: 0} if current else {traffic.NEW: 100}
        operation = self.api.deploy_model(
            endpoint.name, self._deployed_model(model.name, version), split
        )
        response = self.api.wait_operation(
            operation,
            f"redeploying {version}",
            deadline,
            self._say,
            self.api.types.DeployModelResponse,
        )
        return response.deployed_model

    def _shift_all(
        self,
        endpoint: str,
        chosen: str,
        others: list[str],
        deadline: float,
        labels: dict[str, str],
        progress: Progress,
    ) -> None:
        """All traffic to ``chosen``, then undeploy every other deployed model."""
        from deployer_gcp.rollout import Rollout

        self.api.set_traffic(endpoint, traffic.split(chosen, 100, None, others), labels=labels)
        outcome = Rollout(
            api=self.api,
            endpoint=endpoint,
            new_id=chosen,
            old_id=None,
            version=labels[names.LABEL_VERSION],
            previous_version=None,
            shares=[100],
            bake_seconds=0.0,
            sample=None,
            deadline=deadline,
            progress=progress,
        ).promote()
        if outcome.state != "healthy":
            raise VertexError(f"rollback incomplete: {outcome.reason}")

    def destroy(self, progress: Progress) -> list[str]:
        """Undeploy everything, delete the endpoint(s) and the models of this project+target."""
        self._say = progress
        removed: list[str] = []
        for endpoint in self.api.find_endpoints(self.owner):
            for deployed in sorted(
                traffic.deployed_models(endpoint),
                key=lambda dm: dict(endpoint.traffic_split).get(dm.id, 0),
            ):
                self._undeploy(endpoint.name, deployed.id)
                removed.append(f"deployed model {deployed.display_name} ({deployed.id})")
                progress(f"undeployed {deployed.display_name}")
            if self._gone(
                lambda e=endpoint: self.api.delete_endpoint(e.name),
                f"deleting endpoint {endpoint.name}",
            ):
                removed.append(f"endpoint {endpoint.display_name} ({endpoint.name})")
                progress(f"deleted endpoint {endpoint.name}")
        for model in self.api.find_models(self.owner):
            if self._gone(
                lambda m=model: self.api.delete_model(m.name), f"deleting model {model.name}"
            ):
                removed.append(f"model {model.display_name} ({model.name})")
                progress(f"deleted model {model.name}")
        return removed

    def route(self) -> Backend:
        endpoint = self._require_endpoint()
        return Backend(
            self.target.name,
            self.name,
            self._url(endpoint.name),
            auth="google-oauth",
            region=self.options.region,
        )

    # -- deploy helpers ----------------------------------------------------------------

    def _ensure_endpoint(self, progress: Progress) -> Any:
        endpoint = self._endpoint()
        if endpoint is not None:
            return endpoint
        display = self._display()
        progress(f"creating endpoint {display} in {self.api.parent}")
        operation = self.api.create_endpoint(display, self.owner)
        created = self.api.wait_operation(
            operation,
            f"creating endpoint {display}",
            self._deadline(),
            progress,
            self.api.types.Endpoint,
        )
        return self.api.get_endpoint(created.name)

    def _models(self, version: str) -> list[Any]:
        return list(
            self.api.find_models(names.version_labels(self.project, self.target.name, version))
        )

    def _model(self, release: Release, image_ref: str, progress: Progress) -> str:
        """The Model resource of ``release.version``: reused when present, else uploaded."""
        version = release.version
        found = self._models(version)
        if found:
            progress(f"reusing model {found[0].name} of {version}")
            return str(found[0].name)
        display = names.model_display_name(self.project, self.target.name, version)
        progress(f"uploading model {display} ({image_ref})")
        operation = self.api.upload_model(
            display,
            image_ref,
            names.version_labels(self.project, self.target.name, version),
            routes.VERTEX_PREDICT,
            routes.VERTEX_HEALTH,
            self.options.env,
            CONTAINER_PORT,
        )
        response = self.api.wait_operation(
            operation,
            f"uploading model {display}",
            self._deadline(),
            progress,
            self.api.types.UploadModelResponse,
        )
        return str(response.model)

    def _deployed_model(self, model: str, version: str) -> Any:
        types = self.api.types
        low, high = self.options.replicas
        deployed = types.DeployedModel(
            model=model,
            display_name=names.deployed_model_display_name(version),
            dedicated_resources=types.DedicatedResources(
                machine_spec=types.MachineSpec(machine_type=self.options.machine_type),
                min_replica_count=low,
                max_replica_count=high,
            ),
        )
        if self.options.service_account:
            deployed.service_account = self.options.service_account
        return deployed

    def _after_promotion(
        self, endpoint: str, version: str, previous: str | None, progress: Progress
    ) -> None:
        """Record the live and previous versions on the endpoint; prune older models."""
        current = self.api.get_endpoint(endpoint)
        if not previous or previous == version:
            # A re-push that only cleaned up (the new version went live on its own after a
            # timed-out wait): the version promoted before it is what rollback returns to.
            recorded = current.labels.get(names.LABEL_VERSION)
            if recorded and recorded != names.label_value(version):
                previous = recorded
            else:
                previous = current.labels.get(LABEL_PREVIOUS)
        self.api.set_traffic(
            endpoint, dict(current.traffic_split), labels=self._labels(version, previous)
        )
        keep = {names.label_value(v) for v in (version, previous) if v}
        deployed = {dm.model.split("@")[0] for dm in current.deployed_models}
        for model in self.api.find_models(self.owner):
            if model.name in deployed or model.labels.get(names.LABEL_VERSION) in keep:
                continue
            progress(f"deleting old model {model.display_name}")
            self._gone(
                lambda m=model: self.api.delete_model(m.name), f"deleting model {model.name}"
            )

    # -- status helpers ----------------------------------------------------------------

    def _status_of(self, endpoint: Any) -> Status:
        url = self._url(endpoint.name)
        models = traffic.deployed_models(endpoint)
        shares = dict(endpoint.traffic_split)
        details = {
            "endpoint": endpoint.name,
            "traffic": {dm.display_name: shares.get(dm.id, 0) for dm in models},
            "deployed_models": {dm.id: dm.display_name for dm in models},
        }
        live = traffic.live_deployed_model(endpoint)
        if live is None:
            return Status(
                self.target.name,
                "unhealthy",
                None,
                url,
                "the endpoint has no deployed model",
                details,
            )
        version = traffic.version_of(live)
        total = sum(shares.values())
        if total != 100:
            reason = f"the endpoint's traffic split sums to {total}%, not 100%"
            return Status(self.target.name, "unhealthy", version, url, reason, details)
        state = live.status
        if state.last_update_time and state.available_replica_count == 0:
            reason = f"no replica of {version} is available: {state.message or 'no message'}"
            return Status(self.target.name, "unhealthy", version, url, reason, details)
        serving = [dm for dm in models if shares.get(dm.id, 0) > 0]
        if len(serving) > 1:
            split = ", ".join(f"{dm.display_name} {shares[dm.id]}%" for dm in serving)
            reason = f"a rollout is in progress: traffic is split ({split})"
            return Status(self.target.name, "updating", version, url, reason, details)
        return Status(self.target.name, "healthy", version, url, details=details)

    def _wait_healthy(self, deadline: float, timeout: float, progress: Progress) -> Status:
        status = self.status()
        while not status.healthy and time.monotonic() < deadline:
            progress(f"waiting for health: {status.state}: {status.reason}")
            time.sleep(self.options.poll_interval)
            status = self.status()
        if status.healthy:
            return status
        reason = f"timed out after {seconds(timeout)}; last state: {status.state}: {status.reason}"
        return dataclasses.replace(status, reason=reason)

    def _still_serving(self, endpoint: str) -> str:
        current = self.api.get_endpoint(endpoint)
        live = traffic.live_deployed_model(current)
        if live is None:
            return "; nothing else is deployed on the endpoint"
        share = dict(current.traffic_split).get(live.id, 0)
        return f"; {live.display_name} keeps serving ({share}% of traffic)"

    def _failed(self, reason: str, operation: str) -> Status:
        status = self.status()
        details = {**status.details, "operation": operation}
        return dataclasses.replace(status, state="failed", reason=reason, details=details)

    # -- removal helpers ---------------------------------------------------------------

    def _undeploy(self, endpoint: str, deployed_model_id: str) -> None:
        current = self.api.get_endpoint(endpoint)
        operation = self.api.undeploy_model(
            endpoint, deployed_model_id, traffic.without(current, deployed_model_id)
        )
        self.api.wait_operation(
            operation, f"undeploying {deployed_model_id}", self._deadline(), self._say
        )

    def _gone(self, start: Any, action: str) -> bool:
        """Run a delete (start() returns its operation); False if it was already gone."""
        try:
            operation = start()
            self.api.wait_operation(operation, action, self._deadline(), self._say)
        except VertexError as exc:
            if exc.code == "NOT_FOUND":
                return False
            raise
        return True
