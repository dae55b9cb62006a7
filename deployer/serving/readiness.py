"""Readiness across worker processes: ready only once every worker has loaded the model.

With ``workers > 1`` the launcher gives every worker one shared directory (its path in
DEPLOYER_SERVING_STATE_DIR). A worker that has loaded the model writes ``ready-<pid>``
there; a health probe, whichever worker answers it, counts the markers of live workers.
A worker the supervisor restarted has a new pid, so the server is not ready again until
the new one has loaded too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

STATE_DIR_ENV = "DEPLOYER_SERVING_STATE_DIR"
_PREFIX = "ready-"

log = logging.getLogger("deployer.serving")


class WorkerReadiness:
    """Markers of the workers that have loaded the model (no directory: one worker)."""

    def __init__(self, workers: int, directory: Path | None) -> None:
        self.workers = workers if directory is not None else 1
        self.directory = directory

    @classmethod
    def from_environment(
        cls, workers: int, environ: Mapping[str, str] | None = None
    ) -> WorkerReadiness:
        env = os.environ if environ is None else environ
        raw = env.get(STATE_DIR_ENV)
        if workers <= 1 or not raw:
            return cls(1, None)
        return cls(workers, Path(raw) / "ready")

    def mark_ready(self) -> None:
        """Record that this process has loaded the model."""
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{_PREFIX}{os.getpid()}").touch()
        except OSError as exc:  # the directory vanished: say why readiness never comes
            log.error("cannot record readiness in %s: %s", self.directory, exc)

    def loaded(self) -> int:
        """How many live workers have loaded the model."""
        if self.directory is None:
            return 1
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        return sum(1 for name in names if name.startswith(_PREFIX) and _alive(name))

    def all_loaded(self) -> tuple[bool, str | None]:
        """Whether every worker has loaded the model, and if not, how many have."""
        if self.directory is None:
            return True, None
        count = self.loaded()
        if count >= self.workers:
            return True, None
        return False, f"{count} of {self.workers} workers have loaded the model"


def _alive(name: str) -> bool:
    pid = name[len(_PREFIX) :]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
