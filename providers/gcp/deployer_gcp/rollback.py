"""Back to the previous version, from the endpoint's labels and kept Models.

An unfinished rollout (more than one deployed model) goes back to the last promoted
version (the endpoint's ``deployer-version`` label) when it is still deployed.
Otherwise the version promoted before it (``deployer-previous``) gets all traffic:
shifted when it is still deployed, else redeployed from its kept Model. Every other
deployed model is then undeployed.
"""

from __future__ import annotations

from typing import Any

from deployer.providers import Deployment, Progress, UsageError
from deployer_gcp import models, names, traffic
from deployer_gcp.errors import VertexError
from deployer_gcp.rollout import Rollout
from deployer_gcp.scope import Scope


def rollback(scope: Scope, progress: Progress) -> Deployment:
    """Give all traffic back to the previous version (see the module docstring)."""
    scope.say = progress
    endpoint = scope.require_endpoint()
    live = traffic.live_deployed_model(endpoint)
    if live is None:
        raise UsageError(f"nothing is deployed on {scope.target}; nothing to roll back")
    current = str(live.display_name)
    last = endpoint.labels.get(names.LABEL_VERSION)
    previous = endpoint.labels.get(names.LABEL_PREVIOUS)
    deployed = {names.label_value(dm.display_name): dm for dm in endpoint.deployed_models}
    deadline = scope.deadline()
    if len(deployed) > 1 and last in deployed:
        chosen = deployed[last]
        newer = [dm for dm in traffic.deployed_models(endpoint) if dm.id != chosen.id]
        undone = str(newer[-1].display_name)
        progress(f"stopping the unfinished rollout of {undone}; back to {chosen.display_name}")
        labels = scope.labels(str(chosen.display_name), previous)
    elif previous and previous != names.label_value(current):
        chosen = deployed.get(previous) or redeploy(scope, endpoint, previous, deadline)
        undone = current
        labels = scope.labels(str(chosen.display_name), current)
    else:
        raise UsageError(f"{scope.target} has no previous version to roll back to")
    version = str(chosen.display_name)
    progress(f"giving all traffic to {version}")
    others = [dm.id for dm in scope.api.get_endpoint(endpoint.name).deployed_models]
    shift_all(scope, endpoint.name, chosen.id, others, deadline, labels, progress)
    progress(f"{version} serves all traffic again")
    return Deployment(scope.target, version, undone, True, {"endpoint": endpoint.name})


def redeploy(scope: Scope, endpoint: Any, version_label: str, deadline: float) -> Any:
    """Deploy the kept Model of ``version_label`` with no traffic; its DeployedModel."""
    api = scope.api
    found = api.find_models({**scope.owner, names.LABEL_VERSION: version_label})
    if not found:
        raise UsageError(
            f"{scope.target} has no previous version to roll back to "
            f"(the model of {version_label} is gone)"
        )
    model = found[0]
    version = str(model.labels[names.LABEL_VERSION])
    scope.say(f"redeploying {version} from its kept model {model.name}")
    current = dict(endpoint.traffic_split)
    split = {**current, traffic.NEW: 0} if current else {traffic.NEW: 100}
    operation = api.deploy_model(
        endpoint.name, models.deployed_model(scope, model.name, version), split
    )
    response = api.wait_operation(
        operation, f"redeploying {version}", deadline, scope.say, api.types.DeployModelResponse
    )
    return response.deployed_model


def shift_all(
    scope: Scope,
    endpoint: str,
    chosen: str,
    others: list[str],
    deadline: float,
    labels: dict[str, str],
    progress: Progress,
) -> None:
    """All traffic to ``chosen``, then undeploy every other deployed model."""
    api = scope.api
    api.set_traffic(endpoint, traffic.split(chosen, 100, None, others), labels=labels)
    outcome = Rollout(
        api=api,
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
