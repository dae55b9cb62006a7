"""Batch job records: ``.deployer/batch/<job>.json`` (the target, the spec, the last
known ``BatchJob``), written atomically."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from deployer.errors import UsageError
from deployer.providers.batch import BatchJob

FOLDER = Path(".deployer") / "batch"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def record_path(root: Path, job_id: str) -> Path:
    return root / FOLDER / f"{_SAFE.sub('_', job_id)}.json"


def save(root: Path, job: BatchJob, extra: dict[str, Any]) -> Path:
    """Write (or replace) the job's record."""
    path = record_path(root, job.job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({**extra, "job": asdict(job)}, indent=2, default=str))
    os.replace(temporary, path)
    return path


def load(root: Path, job_id: str) -> tuple[BatchJob, dict[str, Any]]:
    """The job's last known state and the rest of its record; UsageError naming the
    jobs there are when it has none."""
    path = record_path(root, job_id)
    if not path.is_file():
        known = sorted(p.stem for p in (root / FOLDER).glob("*.json"))
        raise UsageError(
            f"no batch job {job_id!r} in {root / FOLDER}"
            + (f"; the jobs there: {', '.join(known[-10:])}" if known else "")
        )
    data = json.loads(path.read_text())
    job = BatchJob(**data.pop("job"))
    return job, data
