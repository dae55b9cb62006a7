"""The workspace's Azure Container Registry: where it is and how to push to it.

- Login server: the workspace names its registry (``Workspace.container_registry``, an
  ARM id); ARM's GET on that resource gives ``properties.loginServer``.
- Credentials (``registry_auth``):
  - ``admin``: the registry's admin credentials from the workspace keys
    (``MLClient.workspaces.get_keys()``, the SDK's own path; needs the ACR admin user);
  - ``token``: a short-lived ACR refresh token, exchanged at ``/oauth2/exchange`` for
    the caller's Azure AD token, with the null-GUID user (what ``az acr login`` does;
    needs AcrPush on the registry, no admin user);
  - ``auto`` (default): ``admin`` when the registry has its admin user enabled, else
    ``token``.
The push itself (``publish``) goes through the SDK's ``push_image``: credentials go to
the Docker engine with the push request only, never into a Docker config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployer.providers import DeployerError, Image, Progress, RegistryAuth
from deployer_azure.auth import azure_errors
from deployer_azure.client import arm_client, arm_json, ca_verify, resource_manager_url
from deployer_azure.options import AzureOptions
from deployer_azure.workspace import Workspace

ACR_API_VERSION = "2023-07-01"
NULL_GUID_USER = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class AcrTarget:
    """Where to push: ``login_server`` (host[:port]) and the credentials for it."""

    login_server: str
    auth: RegistryAuth
    method: str


def publish(ws: Workspace, image: Image, progress: Progress) -> str:
    """Push to the workspace's container registry; return ``repo@sha256:...``."""
    from deployer.providers import docker_client, push_image

    with azure_errors("looking up the workspace's container registry", ws.scope):
        acr = acr_target(ws.ml, arm_client(ws.options, ws.credential), ws.options, ws.credential)
    repository = f"{acr.login_server}/{ws.options.repository or ws.project}"
    progress(f"pushing to {repository} ({acr.method} credentials)")
    return push_image(docker_client(), image.id, repository, image.version, acr.auth, progress)


def registry_resource_id(ml: Any, workspace: str) -> str:
    """The ARM id of the workspace's container registry."""
    registry_id = ml.workspaces.get(workspace).container_registry
    if not registry_id:
        raise DeployerError(
            f"workspace {workspace} has no container registry yet",
            hint="attach one: az ml workspace update --name WORKSPACE --container-registry "
            "ACR_RESOURCE_ID (Azure ML otherwise creates it at the first image build)",
        )
    return str(registry_id)


def acr_target(ml: Any, arm: Any, options: AzureOptions, credential: Any) -> AcrTarget:
    """The workspace registry's login server and push credentials, per ``registry_auth``."""
    registry_id = registry_resource_id(ml, options.workspace)
    resource = arm_json(arm, "GET", registry_id, ACR_API_VERSION)
    properties = resource.get("properties") or {}
    login_server = str(properties.get("loginServer") or "")
    if not login_server:
        raise DeployerError(f"registry {registry_id} has no login server (is it provisioned?)")
    admin_enabled = bool(properties.get("adminUserEnabled"))
    method = options.registry_auth
    if method == "auto":
        method = "admin" if admin_enabled else "token"
    if method == "admin":
        return AcrTarget(
            login_server, admin_credentials(ml, options.workspace, registry_id), method
        )
    token = exchange_token(login_server, aad_token(credential, options))
    return AcrTarget(login_server, RegistryAuth(NULL_GUID_USER, token), method)


def admin_credentials(ml: Any, workspace: str, registry_id: str) -> RegistryAuth:
    """The registry's admin user, as the workspace keys report it."""
    keys = ml.workspaces.get_keys(workspace)
    found = getattr(keys, "container_registry_credentials", None)
    passwords = list(getattr(found, "passwords", None) or [])
    username = getattr(found, "username", None)
    if not username or not passwords:
        raise DeployerError(
            f"the workspace keys carry no credentials for {registry_id} (admin user disabled)",
            hint="set registry_auth: token (needs AcrPush on the registry), or enable the admin "
            "user: az acr update --name REGISTRY --admin-enabled true",
        )
    first = passwords[0]
    password = first.get("value") if isinstance(first, dict) else getattr(first, "value", None)
    if not password:
        raise DeployerError(f"the workspace keys carry an empty password for {registry_id}")
    return RegistryAuth(str(username), str(password))


def aad_token(credential: Any, options: AzureOptions) -> str:
    """An Azure AD access token for Resource Manager (what ACR's exchange accepts)."""
    scope = resource_manager_url(options).rstrip("/") + "/.default"
    return str(credential.get_token(scope).token)


def exchange_token(login_server: str, access_token: str) -> str:
    """Exchange an Azure AD token for an ACR refresh token (``/oauth2/exchange``)."""
    import httpx

    try:
        response = httpx.post(
            f"https://{login_server}/oauth2/exchange",
            data={
                "grant_type": "access_token",
                "service": login_server.split(":")[0],
                "access_token": access_token,
            },
            timeout=30.0,
            verify=ca_verify(),
        )
    except httpx.HTTPError as exc:
        raise DeployerError(f"could not reach {login_server} for an ACR token: {exc}") from None
    if response.status_code != 200:
        raise DeployerError(
            f"{login_server} refused the ACR token exchange ({response.status_code}): "
            f"{response.text[:200].replace(access_token, '***')}",
            hint="the identity needs the AcrPush role on the registry",
        )
    token = response.json().get("refresh_token")
    if not token:
        raise DeployerError(f"{login_server} answered the token exchange without a token")
    return str(token)
