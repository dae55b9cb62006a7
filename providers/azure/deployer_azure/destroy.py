"""Removing this target from the cloud: its endpoint, and with it every deployment."""

from __future__ import annotations

from deployer.providers import Progress
from deployer_azure import endpoints
from deployer_azure.auth import azure_errors
from deployer_azure.workspace import Workspace


def destroy(ws: Workspace, progress: Progress) -> list[str]:
    """Delete the endpoint if it is this target's; what was removed (nothing if absent)."""
    with azure_errors(f"deleting endpoint {ws.endpoint}", ws.scope):
        endpoint = endpoints.owned_endpoint(ws)
        if endpoint is None:
            progress(f"endpoint {ws.endpoint} does not exist; nothing to remove")
            return []
        deployments = sorted(endpoints.traffic(endpoint))
        progress(f"deleting endpoint {ws.endpoint} and {len(deployments)} deployment(s)")
        ws.ml.online_endpoints.begin_delete(ws.endpoint).result()
    ws.scoring = None
    removed = [f"deployment {ws.endpoint}/{name}" for name in deployments]
    return [*removed, f"endpoint {ws.endpoint}"]
