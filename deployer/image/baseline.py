"""The training baseline an image bakes for its streaming drift metrics: deployer.lock's
``baseline`` (format: deployer.serving.baseline_bins), taken only while its
``model_sha256`` is the served model's. It changes the image tag like the threshold."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError
from deployer.lockfile import LOCK_FILE, Lock, valid_baseline
from deployer.serving.baseline_bins import read_baseline

FIELD = "baseline"
IMAGE_FOLDER = "/opt/deployer/monitoring"
IMAGE_FILE = f"{IMAGE_FOLDER}/baseline.json"


def lock_baseline(folder: Path, model_sha256: str | None) -> dict[str, Any] | None:
    """``folder``'s deployer.lock ``baseline`` when it belongs to ``model_sha256`` (else
    None); a ConfigError naming deployer.lock and the field when it is malformed."""
    if model_sha256 is None or not (folder / LOCK_FILE).is_file():
        return None
    lock = Lock.read(folder)
    if lock is not None and lock.baseline is not None and not isinstance(lock.baseline, dict):
        raise ConfigError(str(folder / LOCK_FILE), [f"{FIELD}: expected an object"])
    baseline = valid_baseline(lock, model_sha256)  # another model's: `deployer baseline` again
    if baseline is not None:
        try:
            read_baseline(baseline)
        except ValueError as exc:
            raise ConfigError(str(folder / LOCK_FILE), [str(exc)]) from None
    return baseline


def tag_hash(base_hash: str, baseline: dict[str, Any] | None) -> str:
    """``base_hash`` (artifact and threshold), hashed with the baseline when one is baked."""
    if baseline is None:
        return base_hash
    text = json.dumps(baseline, sort_keys=True)
    return hashlib.sha256(f"{base_hash}\0baseline={text}".encode()).hexdigest()
