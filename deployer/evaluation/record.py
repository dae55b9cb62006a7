"""``evaluation`` in deployer.lock: written next to the model's sha256, flavour and signature,
the rest of the lock kept."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployer.lockfile import Lock


def record(folder: Path, entry: dict[str, Any], fresh_lock: Callable[[], Lock]) -> Path:
    """Write ``entry`` as the lock's ``evaluation`` in ``folder``: into the lock there when
    it is for the same model, else into ``fresh_lock()`` (what ``deployer lock`` writes)."""
    lock = Lock.read(folder)
    if lock is None or lock.model_sha256 != entry.get("model_sha256"):
        lock = fresh_lock()
    return dataclasses.replace(lock, evaluation=entry).write(folder)
