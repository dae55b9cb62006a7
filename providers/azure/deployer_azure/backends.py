"""The endpoint as a router backend: what ``push`` writes to router.yaml (``route``),
and finding the endpoint back from a backend's URL (``find_endpoint``, for the signer)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from deployer.providers import Backend, UsageError
from deployer_azure import endpoints, scoring
from deployer_azure.auth import azure_errors
from deployer_azure.options import NAME_PATTERN
from deployer_azure.workspace import Workspace


def route(ws: Workspace, provider: str) -> Backend:
    """The endpoint's scoring URI, auth kind (``azure-key`` or ``azure-token``) and region."""
    with azure_errors(f"reading endpoint {ws.endpoint}", ws.scope):
        endpoint = endpoints.owned_endpoint(ws)
    if endpoint is None or not endpoint.scoring_uri:
        raise UsageError(
            f"endpoint {ws.endpoint} does not exist",
            hint=f"deployer push --to {ws.target}",
        )
    auth = "azure-key" if ws.options.auth_mode == "key" else "azure-token"
    return Backend(ws.target, provider, endpoint.scoring_uri, auth, endpoint.location)


def find_endpoint(ws: Workspace, scoring_uri: str) -> str | None:
    """The name of the workspace's online endpoint whose scoring URI is ``scoring_uri``:
    ``endpoint_name`` when the options set it, else the endpoint the URL's host names
    (``NAME.REGION.inference.ml.azure.com``), else the one a listing finds; None when
    there is none."""
    if ws.options.endpoint_name:
        return ws.options.endpoint_name
    label = (urlsplit(scoring_uri).hostname or "").split(".")[0]
    with azure_errors(f"looking for the endpoint of {scoring_uri}", ws.workspace_scope):
        if re.fullmatch(NAME_PATTERN, label):
            found = endpoints.get_endpoint(ws, label)
            if found is not None and scoring.same_uri(found.scoring_uri, scoring_uri):
                return label
        for endpoint in ws.ml.online_endpoints.list():
            if scoring.same_uri(endpoint.scoring_uri, scoring_uri):
                return str(endpoint.name)
    return None
