"""What watches the served predictions, built from the settings and the environment:
the image's own capture (DEPLOYER_CAPTURE) and the streaming drift metrics (a baked
baseline: ServingSettings.baseline_path). ``check`` validates both at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deployer.serving.capture import Capture, spec_from_environment
from deployer.serving.columns import ColumnNames
from deployer.serving.drift_metrics import DriftMetrics, load_baseline
from deployer.serving.settings import ServingSettings

# prometheus_client only for types: importing it fixes its multiprocess mode for good, and
# the launcher decides PROMETHEUS_MULTIPROC_DIR after this module is checked (server.run).
if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from deployer.serving.runner import Observer


@dataclass
class Observing:
    """The observers a runner calls, the collectors /metrics adds, and the capture."""

    observers: list[Observer] = field(default_factory=list)
    collectors: list[Collector] = field(default_factory=list)
    capture: Capture | None = None

    @classmethod
    def build(
        cls, settings: ServingSettings, environ: Mapping[str, str], columns: ColumnNames
    ) -> Observing:
        """ValueError naming DEPLOYER_CAPTURE or the baseline file when either is bad."""
        out = cls()
        if settings.baseline_path:
            features, prediction = load_baseline(settings.baseline_path)
            columns.fallback = tuple(features)
            drift = DriftMetrics(features, prediction, columns)
            out.observers.append(drift.observe)
            out.collectors.append(drift)
        spec = spec_from_environment(environ)
        if spec is not None:
            out.capture = Capture(spec, columns, environ.get(VERSION_ENV) or settings.model_version)
            out.observers.append(out.capture.observe)
        return out

    def start(self) -> None:
        if self.capture is not None:
            self.capture.start()

    def close(self) -> None:
        if self.capture is not None:
            self.capture.close()


VERSION_ENV = "DEPLOYER_VERSION"  # the release's version, when the platform sets it


def check(settings: ServingSettings, environ: Mapping[str, str]) -> None:
    """Validate the capture and baseline settings (ValueError names what is wrong)."""
    Observing.build(settings, environ, ColumnNames())
