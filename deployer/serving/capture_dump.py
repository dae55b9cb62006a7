"""Print a capture folder's records: ``python -m deployer.serving.capture_dump --folder DIR
[--since ISO8601] [--max-bytes N]``.

What the Kubernetes provider runs in a short-lived Job that mounts the capture
PersistentVolumeClaim, so ``deployer drift`` reads the records through the pod log API.
Each complete line of the folder's ``capture-*.jsonl`` files (oldest file first, rotated
ones included; a file's unfinished last line is left out) goes to stdout prefixed with
``CAPTURE_STDOUT_PREFIX``, as the stdout sink writes records: a pod log mixes stdout and
stderr, and the prefix is how a log reader tells records from anything else.

``--since``: only files modified at or after that time minus ``SLACK_SECONDS`` (a file's
records are older than its last write; the slack covers clocks that differ). ``--max-bytes``:
at most that much output, the newest lines kept (the kubelet serves only a container's
current log file, rotated at 10 MiB by default); what is left out is said on stderr as
``{"event": "truncated", ...}``. Exit 0; 2 with ``{"error": ...}`` on stderr when the
folder is missing. Standard library only (and what the image has anyway): no numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import IO

from deployer.providers.monitoring import CAPTURE_STDOUT_PREFIX, parse_time
from deployer.serving.capture_sinks import FILE_PATTERN

SLACK_SECONDS = 300
PREFIX = CAPTURE_STDOUT_PREFIX.encode()


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None


def main(
    argv: list[str] | None = None, out: IO[bytes] | None = None, err: IO[str] | None = None
) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployer.serving.capture_dump")
    parser.add_argument("--folder", required=True, help="the capture folder")
    parser.add_argument("--since", type=_time, help="files written at or after this time")
    parser.add_argument("--max-bytes", type=int, default=0, help="output at most (0: all)")
    args = parser.parse_args(argv)
    out = out or sys.stdout.buffer
    err = err or sys.stderr
    if not Path(args.folder).is_dir():
        err.write(json.dumps({"error": f"--folder {args.folder}: no such folder"}) + "\n")
        return 2
    try:
        left_out = _dump(Path(args.folder), args.since, args.max_bytes, out)
    except OSError as exc:  # unreadable (permissions): the reader's Job fails, naming it
        err.write(json.dumps({"error": f"{exc.filename or args.folder}: {exc.strerror}"}) + "\n")
        return 1
    if left_out:
        event = {"event": "truncated", "bytes_left_out": left_out, "max_bytes": args.max_bytes}
        err.write(json.dumps(event) + "\n")
        err.flush()
    return 0


def _dump(folder: Path, since: datetime | None, max_bytes: int, out: IO[bytes]) -> int:
    """Write the records; the bytes left out for ``max_bytes``."""
    cutoff = since.timestamp() - SLACK_SECONDS if since else None
    files = []
    for path in sorted(folder.glob(FILE_PATTERN)):  # by name: by creation time
        try:
            if cutoff is None or path.stat().st_mtime >= cutoff:
                files.append(path)
        except FileNotFoundError:  # rotated away meanwhile
            continue
    room = max_bytes if max_bytes > 0 else None
    kept: list[list[bytes]] = []  # newest file first
    left_out = 0
    for path in reversed(files):
        if room is not None and room <= 0:
            left_out += _size(path)
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        lines = [line for line in data.split(b"\n")[:-1] if line.strip()]
        if room is not None:  # the newest lines that fit; older ones left out, none skipped
            start = len(lines)
            while start and len(PREFIX) + len(lines[start - 1]) + 1 <= room:
                start -= 1
                room -= len(PREFIX) + len(lines[start]) + 1
            if start:
                left_out += sum(len(line) + 1 for line in lines[:start])
                room = 0
            lines = lines[start:]
        kept.append(lines)
    for lines in reversed(kept):
        out.write(b"".join(PREFIX + line + b"\n" for line in lines))
    out.flush()
    return left_out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
