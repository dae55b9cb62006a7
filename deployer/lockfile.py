"""deployer.lock: what was validated, so a build or a reviewer can tell if the model changed.

Loading a pickle runs code from the file: the sha256 here is the model you vetted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deployer._version import __version__
from deployer.errors import ConfigError, read_config_text

LOCK_FILE = "deployer.lock"


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder's files (sorted relative paths and contents)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Lock:
    model_path: str
    model_sha256: str
    flavor: str
    signature: dict[str, Any]
    evaluation: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    deployer_version: str = __version__

    def write(self, folder: Path) -> Path:
        target = folder / LOCK_FILE
        target.write_text(
            json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return target

    @classmethod
    def read(cls, folder: Path) -> Lock | None:
        """The lock in ``folder``, None when there is none; a ConfigError (exit 2) naming the
        file and line when it is not a small UTF-8 JSON object (read as configuration files
        are: a FIFO is never opened)."""
        source = folder / LOCK_FILE
        if not os.path.lexists(source):
            return None
        text = read_config_text(source, None)
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            where = f"line {exc.lineno}: " if isinstance(exc, json.JSONDecodeError) else ""
            raise ConfigError(
                str(source),
                [f"{where}invalid JSON: {getattr(exc, 'msg', exc)}"],
                hint="rewrite it with: deployer lock",
            ) from None
        if not isinstance(data, dict) or not all(k in data for k in ("model_sha256",)):
            raise ConfigError(
                str(source),
                ["expected a JSON object with model_path, model_sha256, flavor, signature"],
                hint="rewrite it with: deployer lock",
            )
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{"model_path": "", "flavor": "", "signature": {}, **fields})


def valid_evaluation(lock: Lock | None, model_sha256: str | None) -> dict[str, Any] | None:
    """The lock's ``evaluation`` while it belongs to the model ``model_sha256``, else None
    (metrics of another model are stale: ``deployer lock`` drops them)."""
    evaluation = lock.evaluation if lock else None
    if not isinstance(evaluation, dict) or not model_sha256:
        return None
    return evaluation if evaluation.get("model_sha256") == model_sha256 else None


def valid_baseline(lock: Lock | None, model_sha256: str | None) -> dict[str, Any] | None:
    """The lock's ``baseline`` while it belongs to the model ``model_sha256``, else None
    (another model's predictions are stale: ``deployer lock`` drops the baseline)."""
    baseline = lock.baseline if lock else None
    if not isinstance(baseline, dict) or not model_sha256:
        return None
    return baseline if baseline.get("model_sha256") == model_sha256 else None


def lock_warnings(lock: Lock | None, model_sha256: str | None) -> list[str]:
    """What ``validate`` warns about: a model file that no longer matches deployer.lock."""
    if lock and model_sha256 and lock.model_sha256 != model_sha256:
        return ["the model file changed since deployer.lock was written; run `deployer lock`"]
    return []
