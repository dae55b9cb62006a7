"""The directory several worker processes share: Prometheus' per-process metric files and
the readiness markers. It must be writable; on a read-only root with no writable /tmp
there may be none, and the launcher then serves with one worker instead."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Tried after tempfile's own list (TMPDIR, /tmp, /var/tmp, /usr/tmp, the working directory):
# Docker and Kubernetes mount a writable tmpfs here even on a read-only root.
EXTRA_PARENTS = ("/dev/shm",)


def shared_state_dir(
    environ: Mapping[str, str], extra_parents: tuple[str, ...] = EXTRA_PARENTS
) -> tuple[Path | None, str | None]:
    """A fresh writable directory (with ``metrics`` and ``ready`` inside), or None and why."""
    chosen = environ.get(METRICS_DIR_ENV)
    if chosen and not _writable(Path(chosen)):
        return None, f"{METRICS_DIR_ENV}={chosen} is not a writable directory"
    problems: list[str] = []
    for parent in (None, *extra_parents):
        try:
            path = Path(tempfile.mkdtemp(prefix="deployer-serving-", dir=parent))
            (path / "metrics").mkdir()
            (path / "ready").mkdir()
        except OSError as exc:
            problems.append(f"{parent or 'the temporary directory'}: {exc.strerror or exc}")
            continue
        return path, None
    return None, "; ".join(problems)


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True
