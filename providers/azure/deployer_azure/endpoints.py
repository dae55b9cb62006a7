"""Reading and changing this target's endpoint: ownership by tags, its deployments, its
traffic map, and the deletions that keep it under Azure's limits.

The cloud is the source of truth: a resource is this target's when it carries the
``deployer-project`` and ``deployer-target`` tags, and the live deployment is the one
with the most traffic.
"""

from __future__ import annotations

import time
from typing import Any

from deployer.providers import Progress, UsageError
from deployer_azure import names, rollout, specs
from deployer_azure.workspace import Workspace

SUCCEEDED = "succeeded"
FAILED_STATES = ("failed", "canceled")
# States of an operation still running on a deployment (the REST API's
# DeploymentProvisioningState): Azure refuses another write to it meanwhile.
IN_PROGRESS_STATES = ("creating", "updating", "scaling", "deleting")
DELETE_ATTEMPTS = 3
# Deployments per endpoint: how-to-manage-quotas.md (MicrosoftDocs/azure-ai-docs,
# articles/machine-learning, "Number of deployments per endpoint | 20").
MAX_DEPLOYMENTS = 20


def ours(ws: Workspace, resource: Any) -> bool:
    """Whether ``resource`` carries this project's and target's tags."""
    tags = getattr(resource, "tags", None) or {}
    return bool(
        tags.get(names.TAG_PROJECT) == ws.project and tags.get(names.TAG_TARGET) == ws.target
    )


def get_endpoint(ws: Workspace, name: str | None = None) -> Any | None:
    """The endpoint (with every deployment in its traffic map), or None."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return ws.ml.online_endpoints.get(name or ws.endpoint)
    except ResourceNotFoundError:
        return None


def owned_endpoint(ws: Workspace) -> Any | None:
    """This target's endpoint, or None; a UsageError if the name is taken by another."""
    endpoint = get_endpoint(ws)
    if endpoint is not None and not ours(ws, endpoint):
        raise UsageError(
            f"endpoint {ws.endpoint} exists but is not tagged for project {ws.project}, "
            f"target {ws.target}; deployer leaves it alone",
            hint=f"choose another name with targets.{ws.target}.endpoint_name",
        )
    return endpoint


def deployments(ws: Workspace) -> dict[str, Any]:
    """This target's deployments on the endpoint, by name."""
    listed = ws.ml.online_deployments.list(ws.endpoint)
    return {d.name: d for d in listed if ours(ws, d)}


def deployment(ws: Workspace, name: str) -> Any | None:
    """The deployment ``name`` of the endpoint, or None."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return ws.ml.online_deployments.get(name, ws.endpoint)
    except ResourceNotFoundError:
        return None


def traffic(endpoint: Any | None) -> dict[str, int]:
    """The endpoint's traffic map (deployment -> percent); empty with no endpoint."""
    if endpoint is None:
        return {}
    return {k: int(v) for k, v in (endpoint.traffic or {}).items()}


def version(found: Any | None) -> str | None:
    """The release version a deployment runs (its ``deployer-version`` tag)."""
    if found is None:
        return None
    return (found.tags or {}).get(names.TAG_VERSION)


def set_traffic(ws: Workspace, shares: dict[str, int], progress: Progress) -> None:
    """Give the endpoint the traffic map ``shares`` and wait until it has it."""
    progress(f"traffic: {rollout.describe(shares)}")
    endpoint = ws.ml.online_endpoints.get(ws.endpoint)
    endpoint.traffic = dict(shares)
    ws.ml.online_endpoints.begin_create_or_update(endpoint).result()


def delete_deployment(
    ws: Workspace, name: str, progress: Progress, *, settle: float = 0.0
) -> str | None:
    """Delete one deployment; returns why it failed, if it did.

    Azure answers 409 Conflict to an operation on a deployment while another one (its
    create or update) is in progress. With ``settle`` seconds, wait up to that long for
    that operation to end, then delete again; past it, the reason says the deployment is
    still in progress (and left in place)."""
    from azure.core.exceptions import HttpResponseError

    progress(f"deleting deployment {name}")
    deadline = time.monotonic() + settle
    for _ in range(DELETE_ATTEMPTS):
        try:
            ws.ml.online_deployments.begin_delete(name, ws.endpoint).result()
            return None
        except HttpResponseError as exc:
            why = exc.message.splitlines()[0] if exc.message else str(exc)
            if exc.status_code != 409:
                return why
        progress(f"deployment {name} cannot be deleted yet ({why}); waiting for it to settle")
        current = settled_state(ws, name, deadline)
        if current is None:
            return None  # gone meanwhile
        if current.lower() in IN_PROGRESS_STATES:
            return f"{why}; it was still {current} after {settle:g}s"
    return why


def settled_state(ws: Workspace, name: str, deadline: float) -> str | None:
    """Poll ``name`` until no operation on it is in progress or ``deadline`` passes; its
    last provisioning state, or None when it no longer exists."""
    while True:
        found = deployment(ws, name)
        if found is None:
            return None
        current = specs.state(found.provisioning_state)
        if current.lower() not in IN_PROGRESS_STATES:
            return current
        if time.monotonic() + ws.options.poll_interval > deadline:
            return current
        time.sleep(ws.options.poll_interval)


def retire(ws: Workspace, keep: set[str], progress: Progress) -> None:
    """Delete this target's deployments that are not in ``keep`` and get no traffic."""
    shares = traffic(get_endpoint(ws))
    for name in deployments(ws):
        if name not in keep and shares.get(name, 0) == 0:
            delete_deployment(ws, name, progress)


def make_room(ws: Workspace, keep: set[str], progress: Progress) -> None:
    """Stay under Azure's 20 deployments per endpoint by retiring unused ones."""
    listed = list(ws.ml.online_deployments.list(ws.endpoint))
    if len(listed) >= MAX_DEPLOYMENTS:
        retire(ws, keep, progress)
