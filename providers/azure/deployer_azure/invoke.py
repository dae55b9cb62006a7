"""Calling the endpoint's scoring URI as any client would, with the key or token it takes.

``online_endpoints.get_keys`` gives the primary key (auth_mode ``key``) or an endpoint
token (``aml_token``); the secret is cached on the Workspace until the token is about to
expire, and fetched again once if the endpoint answers 401.
"""

from __future__ import annotations

from deployer.providers import DeployerError, Invocation, UsageError
from deployer_azure import client, endpoints, names, scoring
from deployer_azure.auth import azure_errors
from deployer_azure.scoring import ScoringSecret
from deployer_azure.workspace import Workspace


def invoke(
    ws: Workspace,
    body: bytes,
    content_type: str,
    accept: str | None = None,
    deployment: str | None = None,
) -> Invocation:
    """POST ``body`` to the scoring URI (to one ``deployment`` when given)."""
    import httpx

    for attempt in range(2):
        uri, secret = scoring_access(ws, refresh=attempt > 0)
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
                timeout=ws.options.request_timeout_ms / 1000 + 15,
                verify=client.ca_verify(),
            )
        except httpx.HTTPError as exc:
            raise DeployerError(
                f"could not reach the scoring URI {uri}: {type(exc).__name__}: {exc}",
                hint=f"deployer status --to {ws.target}",
            ) from None
        if response.status_code != 401 or attempt:
            return Invocation(
                response.status_code,
                response.content,
                response.headers.get("content-type", ""),
            )
    raise AssertionError("unreachable")


def scoring_access(ws: Workspace, refresh: bool = False) -> tuple[str, str]:
    """The scoring URI and a key (auth_mode key) or token (aml_token), cached until
    the token is about to expire."""
    secret = ws.scoring
    if secret is None or refresh or secret.expired():
        secret = ws.scoring = scoring_secret(ws)
    return secret.scoring_uri, secret.value


def scoring_secret(ws: Workspace, endpoint: str | None = None) -> ScoringSecret:
    """What a client of ``endpoint``'s scoring URI (default: this target's endpoint)
    sends as ``Authorization: Bearer``, from ``online_endpoints.get_keys``."""
    name = endpoint or ws.endpoint
    with azure_errors(f"getting the keys of endpoint {name}", ws.endpoint_scope(name)):
        found = endpoints.get_endpoint(ws, name)
        if found is None or not found.scoring_uri:
            raise UsageError(
                f"endpoint {name} does not exist in workspace {ws.options.workspace}",
                hint=f"deployer push --to {ws.target}",
            )
        keys = ws.ml.online_endpoints.get_keys(name)
    return scoring.from_keys(name, str(found.scoring_uri), keys)
