"""The local target's prediction capture: the image writes JSON lines into a host folder
mounted in the model container (deployer.serving.capture), and ``captured`` reads them
back (deployer.providers.monitoring.CapturedRecord).

The folder: ``monitoring.capture.destination`` when it is a local path (relative to
deployer.yaml's folder), else ``.deployer/capture/<target>/`` beside deployer.yaml. The
container writes as the host user (as uid 12345, owning the folder, when the host user is
root), so the files are the user's to read and delete. The platform is the source of
truth for reading: the folders mounted in the target's model containers, and the default
folder when it exists.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from deployer.providers import UsageError
from deployer.providers.monitoring import CapturedRecord, CaptureSpec

__all__ = [  # provider.py imports these from here: it imports only the SDK and its package
    "CaptureMount",
    "CaptureReader",
    "CaptureSpec",
    "CapturedRecord",
    "capture_mount",
    "mounted_folders",
    "no_capture",
]

log = logging.getLogger("deployer")

CONTAINER_FOLDER = "/opt/deployer/capture"
ROOT_HOST_UID = 12345  # the restricted containers' user (deployer.image.containers)
REMOTE_SCHEMES = ("s3://", "gs://", "bq://", "az://")


@dataclass(frozen=True)
class CaptureMount:
    """What the model container gets for capture: environment, a bind mount, a user."""

    environment: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    user: str | None = None


def host_folder(spec: CaptureSpec, root: Path, target: str) -> Path:
    """Where the target's capture lands on this machine."""
    destination = spec.destination
    if destination and destination != "stdout" and not destination.startswith(REMOTE_SCHEMES):
        return (root / destination).resolve()
    return (root / ".deployer" / "capture" / target).resolve()


def capture_mount(spec: CaptureSpec | None, root: Path, target: str, version: str) -> CaptureMount:
    """The container's capture settings for ``spec`` (nothing when None)."""
    if spec is None:
        return CaptureMount()
    folder = host_folder(spec, root, target)
    folder.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(folder, ROOT_HOST_UID, ROOT_HOST_UID)
        user = f"{ROOT_HOST_UID}:{ROOT_HOST_UID}"
    else:
        user = f"{os.getuid()}:{os.getgid()}"
    environment = {**spec.to_env(CONTAINER_FOLDER), "DEPLOYER_VERSION": version}
    volumes = {str(folder): {"bind": CONTAINER_FOLDER, "mode": "rw"}}
    return CaptureMount(environment, volumes, user)


def mounted_folders(containers: Iterable[Any]) -> list[Path]:
    """The host folders mounted at CONTAINER_FOLDER in ``containers``."""
    found: list[Path] = []
    for container in containers:
        for mount in container.attrs.get("Mounts") or ():
            source = mount.get("Source")
            if mount.get("Destination") == CONTAINER_FOLDER and source:
                path = Path(source)
                if path not in found:
                    found.append(path)
    return found


@dataclass
class CaptureReader:
    """Records of the ``capture-*.jsonl`` files in ``folders``, oldest first; a line that
    is not a record is skipped and counted (``skipped``); a file's unfinished last line
    (no newline yet) is left for the next read."""

    folders: list[Path]
    skipped: int = 0

    def records(self, since: datetime | None = None) -> Iterator[CapturedRecord]:
        found = [r for r in self._read() if since is None or r.time >= since]
        found.sort(key=lambda r: r.time)
        if self.skipped:
            where = ", ".join(str(f) for f in self.folders)
            log.warning(
                "skipped %d line(s) that are not capture records in %s", self.skipped, where
            )
        return iter(found)

    def _read(self) -> Iterator[CapturedRecord]:
        for folder in self.folders:
            for path in sorted(folder.glob("capture-*.jsonl")):
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                except FileNotFoundError:  # rotated away meanwhile
                    continue
                lines = text.split("\n")
                for line in lines[:-1]:  # the last piece is unfinished (or empty)
                    if line.strip():
                        record = self._parse(line)
                        if record is not None:
                            yield record

    def _parse(self, line: str) -> CapturedRecord | None:
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("expected an object")
            return CapturedRecord.from_json(data)
        except ValueError:
            self.skipped += 1
            return None


def no_capture(target: str) -> UsageError:
    return UsageError(
        f"target {target!r} has captured nothing: no capture folder is mounted or present",
        hint="set monitoring.capture in deployer.yaml and push again",
    )
