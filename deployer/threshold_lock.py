"""The decision threshold deployer.lock records (``evaluation.threshold``), as the image
carries it.

``deployer evaluate --choose-threshold`` writes it; ``build``, ``push`` and ``serve`` carry
it into the serving settings while it belongs to the current model
(``evaluation.model_sha256``). A threshold recorded for another model is stale: it is not
applied, and ``validate`` and ``build`` warn about it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError
from deployer.flavors.base import LoadedModel
from deployer.flavors.threshold import ThresholdError, apply_threshold, check_threshold
from deployer.lockfile import LOCK_FILE, Lock

FIELD = "evaluation.threshold"


@dataclass(frozen=True)
class DecisionThreshold:
    """What the image applies (``settings``, None for nothing) and what to warn about."""

    settings: dict[str, Any] | None = None
    rule: str | None = None
    warnings: list[str] = field(default_factory=list)

    def note(self) -> str | None:
        """One line for ``plan``: the threshold predict decides with."""
        if self.settings is None:
            return None
        rule = f" (chosen for {self.rule})" if self.rule else ""
        label = self.settings.get("positive_label")
        positive = f" {label!r}" if label is not None else ""
        return (
            f"predict answers the positive class{positive} when P >= "
            f"{self.settings['value']:g}{rule}, from deployer.lock {FIELD}"
        )

    def tag_hash(self, artifact_sha256: str) -> str:
        """What the image tag hashes: the artifact, and the threshold when one applies, so a
        new threshold is a new image and a new version."""
        if self.settings is None:
            return artifact_sha256
        text = json.dumps(self.settings, sort_keys=True)
        return hashlib.sha256(f"{artifact_sha256}\0threshold={text}".encode()).hexdigest()


def read_threshold(folder: Path, model_sha256: str | None) -> DecisionThreshold:
    """The threshold in ``folder``'s deployer.lock for the model ``model_sha256``; a
    ConfigError naming deployer.lock and the field when it is malformed."""
    lock = Lock.read(folder)
    evaluation = getattr(lock, "evaluation", None) if lock is not None else None
    if not isinstance(evaluation, dict) or evaluation.get("threshold") is None:
        return DecisionThreshold()
    source = str(folder / LOCK_FILE)
    recorded = evaluation["threshold"]
    if not isinstance(recorded, dict):
        raise ConfigError(source, [f"{FIELD}: expected an object with value and positive_label"])
    try:
        value, label = check_threshold(recorded)
    except ThresholdError as exc:
        raise ConfigError(source, [f"{FIELD}.{exc}"]) from None
    if model_sha256 is None or evaluation.get("model_sha256") != model_sha256:
        return DecisionThreshold(
            warnings=[
                f"{source}: {FIELD} ({value:g}) was chosen for another model "
                f"(evaluation.model_sha256 {str(evaluation.get('model_sha256'))[:12]}); "
                "it is not applied: run `deployer evaluate --choose-threshold` again"
            ]
        )
    rule = recorded.get("rule")
    return DecisionThreshold(
        settings={"value": value, "positive_label": label},
        rule=rule if isinstance(rule, str) else None,
    )


def checked_model(model: LoadedModel, threshold: DecisionThreshold, folder: Path) -> LoadedModel:
    """``model`` with the threshold applied; a ConfigError naming deployer.lock and the
    field when this model cannot take it (regression, multiclass, no predict_proba)."""
    if threshold.settings is None:
        return model
    try:
        return apply_threshold(model, threshold.settings)
    except ThresholdError as exc:
        raise ConfigError(
            str(folder / LOCK_FILE),
            [f"{FIELD}: {exc}"],
            hint="remove evaluation.threshold from deployer.lock, or evaluate again without "
            "--choose-threshold",
        ) from None
