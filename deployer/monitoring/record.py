"""``baseline`` in deployer.lock: written next to the model's sha256, flavour and signature,
the rest of the lock kept (like ``deployer.evaluation.record``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployer.errors import UsageError
from deployer.lockfile import LOCK_FILE, Lock, valid_baseline


def record(folder: Path, entry: dict[str, Any], fresh_lock: Callable[[], Lock]) -> Path:
    """Write ``entry`` as the lock's ``baseline`` in ``folder``: into the lock there when it
    is for the same model, else into ``fresh_lock()`` (what ``deployer lock`` writes)."""
    lock = Lock.read(folder)
    if lock is None or lock.model_sha256 != entry.get("model_sha256"):
        lock = fresh_lock()
    return dataclasses.replace(lock, baseline=entry).write(folder)


def recorded(folder: Path, model_sha256: str) -> dict[str, Any]:
    """The lock's baseline for this model; a UsageError saying how to record one."""
    lock = Lock.read(folder)
    baseline = valid_baseline(lock, model_sha256)
    if baseline is not None:
        return baseline
    stale = lock is not None and isinstance(lock.baseline, dict)
    why = "belongs to another model file" if stale else "has no baseline"
    raise UsageError(
        f"{folder / LOCK_FILE} {why}; drift is measured against the training data's baseline",
        hint="record it with: deployer baseline --data train.csv [--label COLUMN]",
    )
