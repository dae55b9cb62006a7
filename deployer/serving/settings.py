"""Serving settings: what the server needs to know, as plain JSON (no pydantic in the image).

The CLI builds these from deployer.yaml; the image bakes them into a JSON file named by
DEPLOYER_SERVING_CONFIG. Worker processes receive them through DEPLOYER_SERVING_SETTINGS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from deployer.serving import limits
from deployer.serving.routes import DEFAULT_PORT

SETTINGS_ENV = "DEPLOYER_SERVING_SETTINGS"
CONFIG_FILE_ENV = "DEPLOYER_SERVING_CONFIG"
IMAGE_CONFIG_FILE = "/opt/deployer/serving.json"


@dataclass(frozen=True)
class ServingSettings:
    """Everything the model server reads at start-up."""

    model_name: str
    flavor: str
    model_path: str | None
    model_version: str = "1"
    flavor_options: dict[str, Any] = field(default_factory=dict)
    default_method: str | None = None
    # A binary classifier's decision threshold ({"value", "positive_label"}): predict
    # answers the positive class when P(positive) >= value (deployer.flavors.threshold).
    decision_threshold: dict[str, Any] | None = None
    # The training baseline baked in the image (deployer.serving.baseline_bins' format):
    # /metrics then has the streaming drift gauges (deployer.serving.drift_metrics).
    baseline_path: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    max_body_bytes: int = limits.DEFAULT_MAX_BODY_BYTES
    batching: bool | None = None  # None: on for flavours whose rows are independent
    max_batch_size: int = 64
    max_batch_wait_ms: float = 0.0
    max_concurrent_batches: int = 1  # per worker process
    access_log: bool = False
    graceful_shutdown_s: float = 20.0
    # Client bounds: defaults and meaning in deployer/serving/limits.py.
    max_header_bytes: int = limits.DEFAULT_MAX_HEADER_BYTES
    max_headers: int = limits.DEFAULT_MAX_HEADERS
    header_timeout_s: float = limits.DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = limits.DEFAULT_BODY_TIMEOUT_S
    max_response_bytes: int = limits.DEFAULT_MAX_RESPONSE_BYTES
    max_connections: int = limits.DEFAULT_MAX_CONNECTIONS
    keep_alive_s: float = limits.DEFAULT_KEEP_ALIVE_S

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ServingSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown serving settings: {', '.join(unknown)}")
        return cls(**dict(data))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        """Settings from DEPLOYER_SERVING_SETTINGS (JSON) or the file DEPLOYER_SERVING_CONFIG,
        with the limits any DEPLOYER_SERVING_<LIMIT> variable sets (see limits.py)."""
        env = os.environ if environ is None else environ
        raw = env.get(SETTINGS_ENV)
        if raw is None:
            path = env.get(CONFIG_FILE_ENV, IMAGE_CONFIG_FILE)
            with open(path, encoding="utf-8") as f:
                raw = f.read()
        settings = cls.from_mapping(json.loads(raw))
        overrides = limits.overrides_from_environment(env)
        return replace(settings, **overrides) if overrides else settings

    def with_platform_port(self, environ: Mapping[str, str] | None = None) -> ServingSettings:
        """Apply the port a platform dictates: SAGEMAKER_BIND_TO_PORT, then AIP_HTTP_PORT."""
        env = os.environ if environ is None else environ
        for name in ("SAGEMAKER_BIND_TO_PORT", "AIP_HTTP_PORT"):
            value = env.get(name)
            if value:
                return replace(self, port=int(value))
        return self
