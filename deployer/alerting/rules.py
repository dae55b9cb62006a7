"""The alert rules of one project, in no platform's syntax: what each renderer translates.

Four conditions (issue 18): a high error rate (5xx answers / prediction requests over a
window), the 99th percentile latency over a threshold, the model not ready, and drift
(each feature's PSI, and the predictions', over a threshold). Thresholds come from
deployer.yaml's ``monitoring.alerts`` (``drift_psi`` defaulting to ``monitoring.drift.psi``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from deployer.config import MonitoringConfig

Kind = Literal["error_rate", "latency_p99", "not_ready", "feature_drift", "prediction_drift"]
Severity = Literal["critical", "warning"]

# The image's metrics (deployer/serving/metrics.py, the capture's PSI gauges).
REQUESTS = "deployer_request_duration_seconds"
MODEL_READY = "deployer_model_ready"
FEATURE_PSI = "deployer_feature_psi"
PREDICTION_PSI = "deployer_prediction_psi"
BATCH_SIZE = "deployer_batch_requests"
# The routes that serve predictions (deployer/serving: Route names): health, metadata and
# /metrics are neither requests nor errors of the model.
PREDICT_ROUTES = ("sagemaker_invocations", "vertex_predict", "azure_score", "oip_infer")


@dataclass(frozen=True)
class AlertRule:
    """One condition: ``threshold`` in the rule's own unit (a fraction, milliseconds, PSI)."""

    name: str
    kind: Kind
    severity: Severity
    summary: str
    threshold: float
    window_seconds: int
    for_seconds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alert_rules(
    monitoring: MonitoringConfig, *, window_seconds: int | None = None
) -> list[AlertRule]:
    """The project's rules; ``window_seconds`` overrides ``alerts.window_minutes`` (tests,
    short-lived experiments)."""
    alerts = monitoring.alerts
    window = window_seconds if window_seconds is not None else alerts.window_minutes * 60
    psi = alerts.drift_psi if alerts.drift_psi is not None else monitoring.drift.psi
    span = _duration(window)
    rules = [
        AlertRule(
            "DeployerHighErrorRate",
            "error_rate",
            "critical",
            f"more than {alerts.error_rate:.2%} of predictions failed (5xx) over {span}",
            alerts.error_rate,
            window,
        ),
        AlertRule(
            "DeployerHighLatencyP99",
            "latency_p99",
            "warning",
            f"p99 prediction latency over {alerts.p99_ms:g} ms over {span}",
            alerts.p99_ms,
            window,
        ),
        AlertRule(
            "DeployerModelNotReady",
            "not_ready",
            "critical",
            f"the model has not been ready for {span}",
            1.0,
            window,
            for_seconds=window,
        ),
        AlertRule(
            "DeployerFeatureDrift",
            "feature_drift",
            "warning",
            f"a feature's PSI against the training baseline is over {psi:g} for {span}",
            psi,
            window,
            for_seconds=window,
        ),
        AlertRule(
            "DeployerPredictionDrift",
            "prediction_drift",
            "warning",
            f"the predictions' PSI against the training baseline is over {psi:g} for {span}",
            psi,
            window,
            for_seconds=window,
        ),
    ]
    return rules


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
