"""deployer.lock: what was validated, so a build or a reviewer can tell if the model changed.

Loading a pickle runs code from the file: the sha256 here is the model you vetted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deployer._version import __version__

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
    deployer_version: str = __version__

    def write(self, folder: Path) -> Path:
        target = folder / LOCK_FILE
        target.write_text(
            json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return target

    @classmethod
    def read(cls, folder: Path) -> Lock | None:
        source = folder / LOCK_FILE
        if not source.exists():
            return None
        data = json.loads(source.read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
