"""Every route the server answers, in one place. Providers read the ones they declare.

Azure ML has no fixed routes: the Azure provider declares these three in the
deployment's ``inference_config``. Vertex AI names its routes through ``AIP_*``
variables; when they are unset we use VERTEX_HEALTH and VERTEX_PREDICT, which the
Vertex provider passes to ``Model.upload``.
"""

from __future__ import annotations

DEFAULT_PORT = 8080

SAGEMAKER_PING = "/ping"
SAGEMAKER_INVOCATIONS = "/invocations"

VERTEX_HEALTH = "/vertex/health"
VERTEX_PREDICT = "/vertex/predict"

AZURE_LIVENESS = "/live"
AZURE_READINESS = "/ready"
AZURE_SCORING = "/score"

OIP_LIVE = "/v2/health/live"
OIP_READY = "/v2/health/ready"
OIP_SERVER = "/v2"
OIP_SERVER_SLASH = "/v2/"
OIP_MODELS_PREFIX = "/v2/models/"

METRICS = "/metrics"


def health_paths(aip_health_route: str | None = None) -> frozenset[str]:
    """Every liveness and readiness route: still answered when the connection cap is reached."""
    return frozenset(
        {
            SAGEMAKER_PING,
            AZURE_LIVENESS,
            AZURE_READINESS,
            OIP_LIVE,
            OIP_READY,
            aip_health_route or VERTEX_HEALTH,
        }
    )
