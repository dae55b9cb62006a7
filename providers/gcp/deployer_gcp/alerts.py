"""The endpoint's alerts in Cloud Monitoring: what ``deployer alerts render --to`` names
(the Vertex AI endpoint's id and location, found by its owner labels; none before the
first push, and the rendered policy then carries a placeholder), and ``apply``: each
rendered policy created, or updated in place when a policy of the same display name that
deployer manages exists (AlertPolicyService of the official ``google-cloud-monitoring``
client, imported on first use)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deployer.providers import UsageError
from deployer_gcp.errors import translated
from deployer_gcp.monitoring import DEFAULT_HOST
from deployer_gcp.scope import Scope

MANAGED = ("managed-by", "deployer")  # the user label every rendered policy carries


class VertexAlerts:
    """The ``alerts()`` capability of the vertex provider."""

    format = "gcp"

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    @property
    def scope(self) -> Mapping[str, str]:
        found = {"location": self._scope.options.region, "display_name": self._scope.display()}
        endpoint = self._scope.endpoint()
        if endpoint is not None:
            found["endpoint_id"] = str(endpoint.name).rsplit("/", 1)[-1]
        return found

    def apply(self, document: Any) -> list[str]:
        """Create or update each policy of ``document`` (the gcp format's
        ``{"policies": [...]}``); the policies' display names."""
        policies = document.get("policies") if isinstance(document, dict) else None
        if not isinstance(policies, list):
            raise UsageError("alerts: expected the gcp format's {'policies': [...]}")
        from google.api_core.client_options import ClientOptions
        from google.cloud import monitoring_v3

        options = self._scope.options
        client = monitoring_v3.AlertPolicyServiceClient(
            credentials=self._scope.credentials,
            client_options=ClientOptions(api_endpoint=options.monitoring_endpoint or DEFAULT_HOST),
        )
        project = f"projects/{options.project}"
        with translated("list the alert policies of", project):
            managed = f'user_labels."{MANAGED[0]}" = "{MANAGED[1]}"'
            existing = {
                p.display_name: p.name
                for p in client.list_alert_policies(request={"name": project, "filter": managed})
            }
        applied = []
        for body in policies:
            try:
                policy = monitoring_v3.AlertPolicy.from_json(json.dumps(body))
            except (TypeError, ValueError) as exc:  # a field the API does not know
                raise UsageError(f"alerts: not an AlertPolicy: {exc}") from None
            name = existing.get(policy.display_name)
            with translated("apply the alert policy", repr(policy.display_name)):
                if name:
                    policy.name = name
                    client.update_alert_policy(alert_policy=policy)
                else:
                    client.create_alert_policy(name=project, alert_policy=policy)
            applied.append(policy.display_name)
        return applied
