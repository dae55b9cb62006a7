"""Removing what deployer owns: undeploy, delete endpoints and models (idempotently).

Only resources carrying the project's and target's owner labels are touched; a resource
already gone counts as removed by someone else, not as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from deployer.providers import Progress
from deployer_gcp import traffic
from deployer_gcp.errors import VertexError
from deployer_gcp.scope import Scope


def destroy(scope: Scope, progress: Progress) -> list[str]:
    """Undeploy everything, delete the endpoint(s) and the models of this project+target."""
    scope.say = progress
    api = scope.api
    removed: list[str] = []
    for endpoint in api.find_endpoints(scope.owner):
        for deployed in sorted(
            traffic.deployed_models(endpoint),
            key=lambda dm: dict(endpoint.traffic_split).get(dm.id, 0),
        ):
            undeploy(scope, endpoint.name, deployed.id)
            removed.append(f"deployed model {deployed.display_name} ({deployed.id})")
            progress(f"undeployed {deployed.display_name}")
        if delete(
            scope,
            partial(api.delete_endpoint, endpoint.name),
            f"deleting endpoint {endpoint.name}",
        ):
            removed.append(f"endpoint {endpoint.display_name} ({endpoint.name})")
            progress(f"deleted endpoint {endpoint.name}")
    for model in api.find_models(scope.owner):
        if delete(scope, partial(api.delete_model, model.name), f"deleting model {model.name}"):
            removed.append(f"model {model.display_name} ({model.name})")
            progress(f"deleted model {model.name}")
    return removed


def undeploy(scope: Scope, endpoint: str, deployed_model_id: str) -> None:
    """Undeploy one deployed model; its traffic moves to the live one first."""
    api = scope.api
    current = api.get_endpoint(endpoint)
    operation = api.undeploy_model(
        endpoint, deployed_model_id, traffic.without(current, deployed_model_id)
    )
    api.wait_operation(operation, f"undeploying {deployed_model_id}", scope.deadline(), scope.say)


def delete(scope: Scope, start: Callable[[], str], action: str) -> bool:
    """Run a delete (``start()`` returns its operation); False if it was already gone."""
    try:
        operation = start()
        scope.api.wait_operation(operation, action, scope.deadline(), scope.say)
    except VertexError as exc:
        if exc.code == "NOT_FOUND":
            return False
        raise
    return True
