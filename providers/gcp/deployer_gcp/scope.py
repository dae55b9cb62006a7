"""What every Vertex AI call for one project and target shares: the ``Scope``.

It holds the target's options, the owner labels, the credentials and the ``VertexApi``
(both created on first use: they import google-auth and google-cloud-aiplatform), and
the small look-ups the other modules repeat (the endpoint, display names, the deadline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deployer.providers import Progress, UsageError
from deployer_gcp import names
from deployer_gcp.options import VertexOptions

if TYPE_CHECKING:
    from deployer_gcp.api import VertexApi
    from deployer_gcp.monitoring import Monitoring


def _quiet(_message: str) -> None:
    pass


class Scope:
    """One project's target on Vertex AI; ``say`` is the current operation's progress."""

    def __init__(self, options: VertexOptions, project: str, target: str) -> None:
        self.options = options
        self.project = project
        self.target = target
        self.owner = names.owner_labels(project, target)
        self.say: Progress = _quiet
        self._credentials: Any = None
        self._api: VertexApi | None = None
        self._monitoring: Monitoring | None = None
        # how a rollout waits through a bake, and its clock (None: the real ones; tests
        # move virtual time instead)
        self.sleep: Callable[[float], None] | None = None
        self.clock: Callable[[], float] | None = None

    @property
    def credentials(self) -> Any:
        """Application Default Credentials (resolved on first use)."""
        if self._credentials is None:
            from deployer_gcp.credentials import default_credentials

            self._credentials = default_credentials()
        return self._credentials

    @property
    def api(self) -> VertexApi:
        """The VertexApi (created on first use: it imports google-cloud-aiplatform)."""
        if self._api is None:
            from deployer_gcp.api import VertexApi

            self._api = VertexApi(self.options, self.credentials, lambda m: self.say(m))
        return self._api

    @property
    def monitoring(self) -> Monitoring:
        """Cloud Monitoring, for the live gates (created on first use)."""
        if self._monitoring is None:
            from deployer_gcp.monitoring import Monitoring

            self._monitoring = Monitoring(
                self.options.project, self.options.monitoring_endpoint, self.credentials
            )
        return self._monitoring

    def endpoint(self) -> Any | None:
        """The endpoint deployer created for this project and target (oldest if several)."""
        found = self.api.find_endpoints(self.owner)
        return found[0] if found else None

    def require_endpoint(self) -> Any:
        """The endpoint, or a UsageError saying to push first."""
        endpoint = self.endpoint()
        if endpoint is None:
            raise UsageError(
                f"{self.target} has no Vertex AI endpoint in {self.api.parent} yet",
                hint=f"deployer push --to {self.target}",
            )
        return endpoint

    def display(self) -> str:
        """The endpoint's display name."""
        return names.endpoint_display_name(self.project, self.target, self.options.endpoint_name)

    def url(self, endpoint: str) -> str:
        """The rawPredict URL of ``endpoint`` (a resource name)."""
        return f"https://{self.api.host}/v1/{endpoint}:rawPredict"

    def deadline(self) -> float:
        """When an operation started now must have finished (monotonic clock)."""
        return time.monotonic() + self.options.operation_timeout

    def labels(self, version: str, previous: str | None) -> dict[str, str]:
        """The endpoint's labels with ``version`` live and ``previous`` before it."""
        labels = {**self.owner, names.LABEL_VERSION: names.label_value(version)}
        if previous:
            labels[names.LABEL_PREVIOUS] = names.label_value(previous)
        return labels

    def models(self, version: str) -> list[Any]:
        """The Model resources uploaded for ``version``."""
        return list(self.api.find_models(names.version_labels(self.project, self.target, version)))
