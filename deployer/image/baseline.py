"""The training baseline an image bakes for its streaming drift metrics: deployer.lock's
``baseline`` (format: deployer.serving.baseline_bins), taken only while its
``model_sha256`` is the served model's. It changes the image tag like the threshold."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError, read_config_text
from deployer.lockfile import LOCK_FILE
from deployer.serving.baseline_bins import read_baseline

FIELD = "baseline"
IMAGE_FOLDER = "/opt/deployer/monitoring"
IMAGE_FILE = f"{IMAGE_FOLDER}/baseline.json"


def lock_baseline(folder: Path, model_sha256: str | None) -> dict[str, Any] | None:
    """``folder``'s deployer.lock ``baseline`` when it belongs to ``model_sha256`` (else
    None); a ConfigError naming deployer.lock and the field when it is malformed."""
    source = folder / LOCK_FILE
    if model_sha256 is None or not source.is_file():
        return None
    try:
        data = json.loads(read_config_text(source, None))
    except ValueError:
        return None  # Lock.read reports a broken lock
    baseline = data.get(FIELD) if isinstance(data, dict) else None
    if baseline is None:
        return None
    if not isinstance(baseline, dict):
        raise ConfigError(str(source), [f"{FIELD}: expected an object"])
    if baseline.get("model_sha256") != model_sha256:
        return None  # recorded for another model: `deployer baseline` again
    try:
        read_baseline(baseline)
    except ValueError as exc:
        raise ConfigError(str(source), [str(exc)]) from None
    return baseline


def tag_hash(base_hash: str, baseline: dict[str, Any] | None) -> str:
    """``base_hash`` (artifact and threshold), hashed with the baseline when one is baked."""
    if baseline is None:
        return base_hash
    text = json.dumps(baseline, sort_keys=True)
    return hashlib.sha256(f"{base_hash}\0baseline={text}".encode()).hexdigest()
