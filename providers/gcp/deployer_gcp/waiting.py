"""Follow a started deploy to its end: the DeployModel operation, then the rollout steps.

Once the new version has all traffic the endpoint's labels record it as live and the
version before it as previous, and models older than those two are deleted.

A DeployModel that outlasts the timeout while an older version serves is stopped: the
operation is cancelled, and if Vertex finishes it anyway (cancellation is best effort)
its traffic goes back to the older version and the new deployed model is undeployed, so
the endpoint is not left with N% on the new version. This takes up to
``operation_timeout`` beyond ``push --timeout``.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial

from deployer.providers import Deployment, Progress, Status
from deployer.providers import live as gates
from deployer_gcp import names
from deployer_gcp.destroy import delete
from deployer_gcp.errors import OperationFailed, OperationTimeout, VertexError
from deployer_gcp.names import seconds
from deployer_gcp.rollout import Rollout
from deployer_gcp.scope import Scope
from deployer_gcp.status import failed, status, still_serving, wait_healthy


def wait(scope: Scope, deployment: Deployment, timeout: float, progress: Progress) -> Status:
    """Wait for ``deployment`` within ``timeout`` seconds; the target's status after it."""
    scope.say = progress
    api = scope.api
    started = time.monotonic()
    deadline = started + timeout
    details = deployment.details
    if not deployment.changed or "shares" not in details:
        return wait_healthy(scope, deadline, timeout, progress)
    endpoint, version = details["endpoint"], deployment.version
    new_id = details.get("deployed_model")
    if "operation" in details:
        try:
            response = api.wait_operation(
                details["operation"],
                f"deploying {version}",
                deadline,
                progress,
                api.types.DeployModelResponse,
            )
        except OperationFailed as exc:
            reason = f"Vertex AI could not deploy {version}: {exc.reason}"
            return failed(scope, reason + still_serving(scope, endpoint), exc.operation)
        except OperationTimeout as exc:
            waited = (
                f"timed out after {seconds(time.monotonic() - started)} waiting for Vertex AI "
                f"to deploy {version}"
            )
            if details.get("previous_deployed_model"):
                return stop_deploy(scope, deployment, exc.operation, waited, progress)
            reason = (
                f"{waited}; last state: the DeployModel operation "
                f"{exc.operation} is still running (the traffic split changes only when "
                "it finishes; Vertex may still complete it)"
            )
            return dataclasses.replace(status(scope), state="updating", reason=reason)
        new_id = response.deployed_model.id
    outcome = Rollout(
        api=api,
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
        live=gates.LiveRules(**details["live"]) if details.get("live") else None,
        monitoring=scope.monitoring if details.get("live") else None,
        sleep=scope.sleep,
        clock=scope.clock,
    ).run(first_step_done="operation" in details)
    if outcome.state == "healthy":
        after_promotion(scope, endpoint, version, deployment.previous_version, progress)
        return status(scope)
    current = status(scope)
    extra: dict[str, object] = {"rolled_back": True} if outcome.rolled_back else {}
    if outcome.live_gate is not None:
        extra["live_gate"] = outcome.live_gate
    return dataclasses.replace(
        current,
        state=outcome.state,
        reason=outcome.reason,
        details={**current.details, **extra},
    )


def stop_deploy(
    scope: Scope, deployment: Deployment, operation: str, waited: str, progress: Progress
) -> Status:
    """Cancel a DeployModel that outlasted the timeout; undo it if it finishes anyway."""
    api, version = scope.api, deployment.version
    endpoint = deployment.details["endpoint"]
    progress(f"{waited}; cancelling the DeployModel operation {operation}")
    deadline = time.monotonic() + api.options.operation_timeout
    try:
        api.cancel_operation(operation)
        response = api.wait_operation(
            operation,
            f"cancelling the deploy of {version}",
            deadline,
            progress,
            api.types.DeployModelResponse,
        )
    except OperationFailed:
        # cancelled (or failed): the traffic split never changed
        reason = f"{waited}; the DeployModel operation {operation} was cancelled"
        return failed(scope, reason + still_serving(scope, endpoint), operation)
    except VertexError as exc:
        reason = (
            f"{waited}; the DeployModel operation {operation} could not be stopped ({exc}); "
            "Vertex may still complete it"
        )
        return dataclasses.replace(status(scope), state="updating", reason=reason)
    outcome = Rollout(
        api=api,
        endpoint=endpoint,
        new_id=str(response.deployed_model.id),
        old_id=deployment.details["previous_deployed_model"],
        version=version,
        previous_version=deployment.previous_version,
        shares=[],
        bake_seconds=0.0,
        sample=None,
        deadline=deadline,
        progress=progress,
    ).abort(f"{waited}; the DeployModel operation finished before it could be cancelled")
    return dataclasses.replace(status(scope), state=outcome.state, reason=outcome.reason)


def after_promotion(
    scope: Scope, endpoint: str, version: str, previous: str | None, progress: Progress
) -> None:
    """Record the live and previous versions on the endpoint; prune older models."""
    api = scope.api
    current = api.get_endpoint(endpoint)
    if not previous or previous == version:
        # A re-push that only cleaned up (the new version went live on its own after a
        # timed-out wait): the version promoted before it is what rollback returns to.
        recorded = current.labels.get(names.LABEL_VERSION)
        if recorded and recorded != names.label_value(version):
            previous = recorded
        else:
            previous = current.labels.get(names.LABEL_PREVIOUS)
    api.set_traffic(endpoint, dict(current.traffic_split), labels=scope.labels(version, previous))
    keep = {names.label_value(v) for v in (version, previous) if v}
    deployed = {dm.model.split("@")[0] for dm in current.deployed_models}
    for model in api.find_models(scope.owner):
        if model.name in deployed or model.labels.get(names.LABEL_VERSION) in keep:
            continue
        progress(f"deleting old model {model.display_name}")
        delete(scope, partial(api.delete_model, model.name), f"deleting model {model.name}")
