"""The online endpoint's alerts in Azure Monitor: what ``deployer alerts render --to``
names (the endpoint's ARM id, the metric alerts' scope) and ``apply``
(``monitoring.alerts.apply``): one ARM PUT (MetricAlerts_CreateOrUpdate) of each
``Microsoft.Insights/metricAlerts`` resource of the ``azure`` format's template into the
workspace's resource group. A PUT creates the rule or replaces the one of that name, so a
second push updates the rules and never adds any. The rules carry the target's tags
(``deployer-project``, ``deployer-target``, ``tags``) besides the template's own.

The PUT goes through the provider's ARM pipeline (``client.arm_client``: its credential,
cloud and retries), as the batch code versions do; one PUT needs no azure-mgmt-monitor.
The identity needs ``Microsoft.Insights/metricAlerts/write`` on the resource group (e.g.
the Monitoring Contributor role). Rules stay after ``destroy``, as a template deployment's
would: delete them with ``az monitor metrics alert delete``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from deployer.providers import UsageError
from deployer_azure import client
from deployer_azure.auth import AzurePermissionError, azure_errors
from deployer_azure.workspace import Workspace

TYPE = "Microsoft.Insights/metricAlerts"
API_VERSION = "2018-03-01"  # deployer.alerting.azure's; a resource's own apiVersion wins
EXPECTED = (
    "alerts: expected the azure format's ARM template: "
    "{'resources': [{'type': 'Microsoft.Insights/metricAlerts', 'name': ..., "
    "'properties': {...}}, ...]}"
)


def metric_alerts(document: Any) -> list[dict[str, Any]]:
    """The metricAlerts resources of the template ``document``; UsageError if it is not one."""
    resources = document.get("resources") if isinstance(document, dict) else None
    if not isinstance(resources, list):
        raise UsageError(EXPECTED)
    for resource in resources:
        if not (
            isinstance(resource, dict)
            and str(resource.get("type", "")).lower() == TYPE.lower()
            and isinstance(resource.get("name"), str)
            and resource["name"]
            and isinstance(resource.get("properties"), dict)
        ):
            got = resource.get("type") if isinstance(resource, dict) else resource
            raise UsageError(f"{EXPECTED}; got a resource {str(got)[:80]!r}")
    return resources


class AzureAlerts:
    """The ``alerts()`` capability of the azureml provider."""

    format = "azure"

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def scope(self) -> Mapping[str, str]:
        return {"endpoint_id": self.workspace.scope}

    def alert_id(self, name: str) -> str:
        """The ARM id of the metric alert ``name`` in the workspace's resource group."""
        options = self.workspace.options
        return (
            f"/subscriptions/{options.subscription_id}/resourceGroups/"
            f"{options.resource_group}/providers/{TYPE}/{quote(name, safe='')}"
        )

    def apply(self, document: Any) -> list[str]:
        """Create or update each metric alert of ``document``; the alerts' names."""
        alerts = metric_alerts(document)
        ws = self.workspace
        applied: list[str] = []
        arm: Any = None
        for resource in alerts:
            name = resource["name"]
            resource_id = self.alert_id(name)
            body = {
                "location": resource.get("location") or "global",
                "tags": {**ws.tags(), **(resource.get("tags") or {})},
                "properties": resource["properties"],
            }
            try:
                with azure_errors(f"applying the metric alert {name}", resource_id):
                    arm = arm or client.arm_client(ws.options, ws.credential)
                    version = str(resource.get("apiVersion") or API_VERSION)
                    client.arm_json(arm, "PUT", resource_id, version, body)
            except AzurePermissionError as exc:
                raise AzurePermissionError(
                    exc.message,
                    hint="grant a role with Microsoft.Insights/metricAlerts/write (e.g. "
                    f"Monitoring Contributor) on the resource group {ws.options.resource_group}",
                ) from None
            applied.append(name)
        return applied
