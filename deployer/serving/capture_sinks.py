"""Where the image's capture writes its JSON lines: a folder (files rotated at a size, the
oldest deleted to keep the folder under a total) or stdout (each line prefixed so that a
log reader finds them). Sinks raise OSError on a write error; the writer stops on it."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Protocol

from deployer.providers.monitoring import CAPTURE_STDOUT_PREFIX

MB = 1024 * 1024
FILE_PATTERN = "capture-*.jsonl"


class Sink(Protocol):
    def write(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


class StdoutSink:
    """Each line on stdout, prefixed with CAPTURE_STDOUT_PREFIX."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, lines: list[str]) -> None:
        self.stream.write("".join(f"{CAPTURE_STDOUT_PREFIX}{line}\n" for line in lines))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class FolderSink:
    """``capture-<utc time>-<pid>-<seq>.jsonl`` files in ``folder``: a new file once the
    current one would pass ``max_file_bytes``; then the oldest files (of any worker, never
    the current one) are deleted until the closed files and a full current one fit in
    ``max_total_bytes``."""

    def __init__(self, folder: str | Path, max_file_bytes: int, max_total_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_total = max(1, max_total_bytes)
        self.max_file = max(1, min(max_file_bytes, self.max_total))
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._seq = 0

    def write(self, lines: list[str]) -> None:
        for line in lines:
            data = (line + "\n").encode("utf-8")
            if self._file is None or (self._size and self._size + len(data) > self.max_file):
                self._rotate()
            assert self._file is not None
            self._file.write(data)
            self._size += len(data)
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def open_file(self, path: Path) -> IO[bytes]:
        """Open a new capture file (tests point this at /dev/full)."""
        return path.open("xb")

    def _rotate(self) -> None:
        self.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self._seq += 1
        self._path = self.folder / f"capture-{stamp}-{os.getpid()}-{self._seq:06d}.jsonl"
        self._file = self.open_file(self._path)
        self._size = 0
        self._trim()

    def _trim(self) -> None:
        """Delete the oldest files until the others and a full current file fit."""
        files = []
        for path in self.folder.glob(FILE_PATTERN):
            if path == self._path:
                continue
            try:
                files.append((path.name, path, path.stat().st_size))
            except FileNotFoundError:  # another worker deleted it
                continue
        files.sort()
        total = sum(size for _, _, size in files) + self.max_file
        for _, path, size in files:
            if total <= self.max_total:
                break
            path.unlink(missing_ok=True)
            total -= size


def sink_for(destination: str | None, max_file_mb: float, max_total_mb: float) -> Sink:
    """stdout (``"stdout"`` or no destination) or a folder."""
    if destination in (None, "", "stdout", "-"):
        return StdoutSink()
    return FolderSink(destination, int(max_file_mb * MB), int(max_total_mb * MB))
