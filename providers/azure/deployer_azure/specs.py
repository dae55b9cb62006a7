"""The azure-ai-ml entities deployer creates: one endpoint, one deployment per version.

The deployment runs the image as built (ENTRYPOINT/CMD) and declares the routes it
serves (deployer/serving/routes.py) in the environment's ``inference_config``.
Scaling is ``instance_count`` (scale type Default): azure-ai-ml has no autoscale API;
Azure Monitor autoscale rules can target the deployment resource afterwards.
"""

from __future__ import annotations

import datetime
from typing import Any

from deployer.providers import routes
from deployer_azure import names
from deployer_azure.options import AzureOptions

PROBE_PERIOD = 10
PROBE_TIMEOUT = 2


def resource_tags(options: AzureOptions, project: str, target: str, **extra: str) -> dict[str, str]:
    """The tags that make the cloud the source of truth for what is deployed."""
    return {
        **options.tags,
        names.TAG_PROJECT: project,
        names.TAG_TARGET: target,
        **extra,
    }


def inference_config() -> dict[str, Any]:
    """The image's Azure routes, all on its serving port."""
    port = routes.DEFAULT_PORT
    return {
        "liveness_route": {"port": port, "path": routes.AZURE_LIVENESS},
        "readiness_route": {"port": port, "path": routes.AZURE_READINESS},
        "scoring_route": {"port": port, "path": routes.AZURE_SCORING},
    }


def endpoint_entity(options: AzureOptions, name: str, tags: dict[str, str]) -> Any:
    """A ManagedOnlineEndpoint with the configured auth mode and identity."""
    from azure.ai.ml.entities import (
        IdentityConfiguration,
        ManagedIdentityConfiguration,
        ManagedOnlineEndpoint,
    )

    identity = None
    if options.identity:
        identity = IdentityConfiguration(
            type="user_assigned",
            user_assigned_identities=[ManagedIdentityConfiguration(resource_id=options.identity)],
        )
    return ManagedOnlineEndpoint(
        name=name,
        auth_mode=options.auth_mode,
        tags=tags,
        identity=identity,
        description="managed by deployer",
    )


def deployment_entity(
    options: AzureOptions,
    endpoint: str,
    name: str,
    image_ref: str,
    tags: dict[str, str],
) -> Any:
    """A ManagedOnlineDeployment of ``image_ref`` sized and probed per the options."""
    from azure.ai.ml.entities import (
        Environment,
        ManagedOnlineDeployment,
        OnlineRequestSettings,
        ProbeSettings,
    )

    def probe(failures: int) -> Any:
        return ProbeSettings(
            initial_delay=options.probe_initial_delay,
            period=PROBE_PERIOD,
            timeout=PROBE_TIMEOUT,
            failure_threshold=failures,
            success_threshold=1,
        )

    return ManagedOnlineDeployment(
        name=name,
        endpoint_name=endpoint,
        environment=Environment(image=image_ref, inference_config=inference_config()),
        instance_type=options.instance_type,
        instance_count=options.instance_count,
        environment_variables=dict(options.environment_variables),
        request_settings=OnlineRequestSettings(
            request_timeout_ms=options.request_timeout_ms,
            max_concurrent_requests_per_instance=options.max_concurrent_requests_per_instance,
        ),
        liveness_probe=probe(3),
        readiness_probe=probe(options.probe_failure_threshold),
        tags=tags,
        description="managed by deployer",
    )


def now_tag() -> str:
    """A sortable UTC timestamp for the ``deployer-created`` tag."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def state(value: Any) -> str:
    """A provisioning state as its plain string (``Succeeded``), whatever the SDK returns."""
    if value is None:
        return "Unknown"
    return str(getattr(value, "value", value))
