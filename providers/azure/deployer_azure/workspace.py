"""One target's view of its Azure ML workspace: the options, the endpoint's name and ARM
ids, lazily made clients, and what this process remembers between calls.

Every other module of the provider takes a ``Workspace`` (as deployer_aws's take
``Aws``); the azure-ai-ml client is made on first use, so ``deployer --help`` imports
no Azure SDK.
"""

from __future__ import annotations

from typing import Any

from deployer_azure import client, names, specs
from deployer_azure.auth import azure_errors
from deployer_azure.options import AzureOptions
from deployer_azure.scoring import ScoringSecret


class Workspace:
    """The workspace, endpoint and clients of one target of one project."""

    def __init__(self, options: AzureOptions, project: str, target: str) -> None:
        self.options = options
        self.project = project
        self.target = target
        self.endpoint = names.endpoint_name(project, target, options.endpoint_name)
        self.workspace_scope = (
            f"/subscriptions/{options.subscription_id}/resourceGroups/"
            f"{options.resource_group}/providers/Microsoft.MachineLearningServices/"
            f"workspaces/{options.workspace}"
        )
        self.scope = self.endpoint_scope(self.endpoint)  # what errors name
        self.pollers: dict[str, Any] = {}  # deployment name -> the LRO this process started
        self.scoring: ScoringSecret | None = None  # for invoke: scoring URI, key or token
        self._credential: Any = None
        self._ml: Any = None

    @property
    def credential(self) -> Any:
        if self._credential is None:
            self._credential = client.credential()
        return self._credential

    @property
    def ml(self) -> Any:
        """The azure-ai-ml MLClient for the workspace, made on first use."""
        if self._ml is None:
            with azure_errors("connecting to the workspace", self.scope):
                self._ml = client.ml_client(self.options, self.credential)
        return self._ml

    def endpoint_scope(self, endpoint: str) -> str:
        """The ARM id of the online endpoint ``endpoint`` in this workspace."""
        return f"{self.workspace_scope}/onlineEndpoints/{endpoint}"

    def tags(self, **extra: str) -> dict[str, str]:
        """The tags of this target's resources (plus ``extra``)."""
        return specs.resource_tags(self.options, self.project, self.target, **extra)
