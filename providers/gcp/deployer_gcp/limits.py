"""What Vertex AI online prediction accepts on a shared public endpoint (the kind deployer
creates), from "Choose an endpoint type" in the Vertex AI documentation.

- request body: at most 1.5 MB (1,572,864 bytes); larger bodies are refused by Vertex
  with ``Request payload size exceeds the limit``. deployer refuses them first (413).
- inference timeout: 60 s per prediction (not configurable on a shared public endpoint;
  dedicated endpoints allow up to 3600 s).
- rollout: the first step is a DeployModel operation that provisions machines and pulls
  the image, typically several minutes and often 15 or more; later steps are traffic
  split updates that apply within seconds.
"""

from __future__ import annotations

import json

from deployer.providers import Invocation

MAX_REQUEST_BYTES = 1_572_864
REQUEST_TIMEOUT_SECONDS = 60.0
ROLLOUT_ALLOWANCE_SECONDS = 1200.0


def too_large(size: int) -> Invocation | None:
    """A 413 answer for a request body of ``size`` bytes over the limit, or None."""
    if size <= MAX_REQUEST_BYTES:
        return None
    message = (
        f"request body of {size} bytes exceeds Vertex AI online prediction's limit of "
        f"{MAX_REQUEST_BYTES} bytes (1.5 MB); send fewer rows per request"
    )
    return Invocation(413, json.dumps({"error": message}).encode(), "application/json")
