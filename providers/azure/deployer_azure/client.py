"""The azure-ai-ml MLClient (and a plain ARM client) configured from the target's options.

- Credentials: ``auth.make_credential()`` (DefaultAzureCredential).
- Clouds: ``cloud`` names one the SDK knows; ``resource_manager_endpoint`` registers a
  custom cloud through the SDK's own ``MLClient(cloud=..., cloud_metadata=...)``.
- Retries: azure-core's RetryPolicy (429 honours Retry-After, 408/5xx back off
  exponentially), configured by ``retries`` and ``retry_backoff``.
- Telemetry is off (``enable_telemetry=False``) and the SDK's progress output is muted:
  deployer reports progress itself, and stdout must stay clean for ``-o json``.
"""

from __future__ import annotations

import logging
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

from deployer_azure import auth
from deployer_azure.options import AzureOptions

_SDK_CLOUDS = ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud")


def custom_cloud(options: AzureOptions) -> tuple[str, dict[str, str]] | None:
    """(cloud name, cloud_metadata) for a custom ARM endpoint, or None for a known cloud."""
    if not options.resource_manager_endpoint:
        return None
    url = options.resource_manager_endpoint.rstrip("/") + "/"
    host = urlsplit(url).netloc
    # one name per endpoint: the SDK keeps the first metadata registered under a name
    name = options.cloud if options.cloud not in _SDK_CLOUDS else f"deployer-{host}"
    metadata = {
        "azure_portal": url,
        "resource_manager": url,
        "active_directory": options.active_directory_endpoint,
        "aml_resource_id": url,
        "storage_endpoint": "core.windows.net",
        "registry_discovery_endpoint": url,
    }
    return name, metadata


def retry_kwargs(options: AzureOptions) -> dict[str, Any]:
    """azure-core RetryPolicy settings, passed through the SDK's client kwargs."""
    return {
        "retry_total": options.retries,
        "retry_backoff_factor": options.retry_backoff,
        "retry_backoff_max": max(options.retry_backoff * 16, 1.0),
    }


def ml_client(options: AzureOptions, credential: Any) -> Any:
    """An MLClient for the target's workspace."""
    from azure.ai.ml import MLClient

    _mute_sdk_progress()
    kwargs: dict[str, Any] = {
        "enable_telemetry": False,
        "show_progress": False,
        **retry_kwargs(options),
    }
    custom = custom_cloud(options)
    if custom is not None:
        kwargs["cloud"], kwargs["cloud_metadata"] = custom
    elif options.cloud != "AzureCloud":
        kwargs["cloud"] = options.cloud
    return MLClient(
        credential,
        subscription_id=options.subscription_id,
        resource_group_name=options.resource_group,
        workspace_name=options.workspace,
        **kwargs,
    )


def resource_manager_url(options: AzureOptions) -> str:
    """The ARM endpoint of the configured cloud."""
    if options.resource_manager_endpoint:
        return options.resource_manager_endpoint.rstrip("/")
    from azure.ai.ml._azure_environments import _get_base_url_from_metadata

    return _get_base_url_from_metadata(options.cloud)


def arm_client(options: AzureOptions, credential: Any) -> Any:
    """A plain ARM pipeline (bearer token, retries) for resources outside azure-ai-ml."""
    from azure.core.pipeline.policies import (
        HeadersPolicy,
        NetworkTraceLoggingPolicy,
        RequestIdPolicy,
        RetryPolicy,
        UserAgentPolicy,
    )
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

    base = resource_manager_url(options)
    policies = [
        RequestIdPolicy(),
        HeadersPolicy(),
        UserAgentPolicy(sdk_moniker="deployer-azure"),
        RetryPolicy(**retry_kwargs(options)),
        ARMChallengeAuthenticationPolicy(credential, f"{base}/.default"),
        NetworkTraceLoggingPolicy(),
    ]
    return ARMPipelineClient(base_url=base, policies=policies)


def arm_json(
    client: Any, method: str, path: str, api_version: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One ARM call (``body``: its JSON); raises azure-core's HttpResponseError (mapped) on
    failure."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
    )
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    request = HttpRequest(
        method, client.format_url(path), params={"api-version": api_version}, json=body
    )
    response = client.send_request(request)
    if response.status_code >= 400:
        error_map: dict[int, type[HttpResponseError]] = {
            401: ClientAuthenticationError,
            404: ResourceNotFoundError,
            409: ResourceExistsError,
        }
        error_type = error_map.get(response.status_code, HttpResponseError)
        raise error_type(response=response, error_format=ARMErrorFormat)
    return dict(response.json()) if response.content else {}


def _mute_sdk_progress() -> None:
    """The SDK's deployment poller prints a dot per poll to stdout; send them nowhere.

    deployer reports the provisioning state itself (``wait``).

    ``AzureMLPolling.update_status`` calls the module's ``print``; shadowing it in that
    module keeps our own stdout (``-o json``) clean without touching anything else.
    """
    from azure.ai.ml._utils import _azureml_polling

    _azureml_polling.print = _no_print  # type: ignore[attr-defined]
    # the same operation also logs "Check: endpoint ... exists" to stderr at INFO
    logging.getLogger("azure.ai.ml.operations._online_deployment_operations").setLevel(
        logging.WARNING
    )


def _no_print(*_args: Any, **_kwargs: Any) -> None:
    return None


def credential() -> Any:
    """The credential from ``auth.make_credential`` (looked up at call time)."""
    return auth.make_credential()


def ca_verify() -> ssl.SSLContext | bool:
    """Trust what the Azure SDK's transport trusts: REQUESTS_CA_BUNDLE, else the defaults."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and os.path.exists(bundle):
        return ssl.create_default_context(cafile=bundle)
    return True
