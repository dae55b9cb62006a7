"""The online endpoint's alerts in Azure Monitor: what ``deployer alerts render --to``
names (the endpoint's ARM id, the metric alerts' scope). Applying them (an ARM PUT of each
``Microsoft.Insights/metricAlerts``) is not done yet: ``monitoring.alerts.apply`` reports
that this provider cannot, and ``az deployment group create`` takes the rendered template."""

from __future__ import annotations

from collections.abc import Mapping

from deployer_azure.workspace import Workspace


class AzureAlerts:
    """The ``alerts()`` capability of the azureml provider (render only)."""

    format = "azure"

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def scope(self) -> Mapping[str, str]:
        return {"endpoint_id": self.workspace.scope}
