"""The endpoint's state as a deployer Status: the live deployment's version and health,
read from the control plane (the endpoint's and the deployment's provisioning states)."""

from __future__ import annotations

from deployer.providers import Status
from deployer_azure import endpoints, names, rollout, specs
from deployer_azure.auth import azure_errors
from deployer_azure.endpoints import FAILED_STATES, SUCCEEDED
from deployer_azure.workspace import Workspace


def status(ws: Workspace) -> Status:
    """absent, updating, unhealthy (no deployment gets traffic), failed or healthy."""
    with azure_errors(f"reading endpoint {ws.endpoint}", ws.scope):
        endpoint = endpoints.get_endpoint(ws)
        if endpoint is None:
            return Status(ws.target, "absent", reason=f"endpoint {ws.endpoint} does not exist")
        if not endpoints.ours(ws, endpoint):
            return Status(
                ws.target,
                "absent",
                reason=f"endpoint {ws.endpoint} is not managed by deployer for this target",
            )
        traffic = endpoints.traffic(endpoint)
        live = rollout.live_deployment(traffic)
        found = endpoints.deployment(ws, live) if live else None
    version = endpoints.version(found)
    details = {
        "endpoint": ws.endpoint,
        "traffic": traffic,
        "location": endpoint.location,
        "deployment": live,
        "annotations": names.annotations_of(getattr(found, "tags", None)),
    }
    url = endpoint.scoring_uri
    endpoint_state = specs.state(endpoint.provisioning_state).lower()
    if endpoint_state in FAILED_STATES:
        reason = f"endpoint {ws.endpoint} is {endpoint_state}"
        return Status(ws.target, "failed", version, url, reason, details)
    if endpoint_state != SUCCEEDED:
        reason = f"endpoint {ws.endpoint} is {endpoint_state}"
        return Status(ws.target, "updating", version, url, reason, details)
    if found is None:
        reason = "no deployment receives traffic"
        return Status(ws.target, "unhealthy", None, url, reason, details)
    deployment_state = specs.state(found.provisioning_state)
    if deployment_state.lower() == SUCCEEDED:
        return Status(ws.target, "healthy", version, url, details=details)
    reason = f"deployment {live} is {deployment_state}"
    if deployment_state.lower() in FAILED_STATES:
        return Status(ws.target, "failed", version, url, reason, details)
    return Status(ws.target, "updating", version, url, reason, details)
