"""The endpoint's alerts in Cloud Monitoring: what ``deployer alerts render --to`` names
(the Vertex AI endpoint's id and location, found by its owner labels; none before the
first push, and the rendered policy then carries a placeholder). Applying the policies
(AlertPolicyService) is not done yet: ``monitoring.alerts.apply`` reports that this
provider cannot, and ``gcloud alpha monitoring policies create --policy-from-file`` takes
each rendered policy."""

from __future__ import annotations

from collections.abc import Mapping

from deployer_gcp.scope import Scope


class VertexAlerts:
    """The ``alerts()`` capability of the vertex provider (render only)."""

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
