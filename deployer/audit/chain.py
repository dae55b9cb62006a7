"""The append-only, hash-chained audit log: ``.deployer/audit.jsonl`` in the project folder.

One JSON object per line. Each record carries ``seq`` (1, 2, ...), ``prev_hash`` (the
previous record's ``hash``; ``GENESIS`` for the first) and ``hash``: the sha256 of the
record's canonical JSON (sorted keys, no spaces, UTF-8) without ``hash``. Editing a line
breaks its hash; deleting, inserting or reordering lines breaks the ``seq`` and
``prev_hash`` of the line after. (Removing the *last* lines leaves a shorter valid chain:
only a copy of the last hash kept elsewhere, e.g. a CI log of ``audit verify``, shows that.)

Appends take an exclusive ``flock`` on the log for the read-last-line-then-write, so two
processes appending at once chain one after the other; each record is written with one
``write`` and ``fsync``-ed. Standard library only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AUDIT_FILE = Path(".deployer") / "audit.jsonl"
GENESIS = "0" * 64
_TAIL_BLOCK = 64 * 1024


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its ``hash`` field."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found: the count of intact records, or the first bad line and why."""

    path: str
    count: int
    bad_line: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_line is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "file": self.path,
            "records": self.count,
            "bad_line": self.bad_line,
            "problem": self.problem,
        }


class AuditLog:
    """The audit log of one project folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / AUDIT_FILE

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Chain ``record`` after the last one (under an exclusive lock) and return it as
        written, with ``seq``, ``time`` (unless given), ``prev_hash`` and ``hash``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev_hash = _chain_end(fd)
            chained: dict[str, Any] = {"time": utc_now(), **record}
            chained.update(seq=seq + 1, prev_hash=prev_hash)
            chained.pop("hash", None)
            chained["hash"] = record_hash(chained)
            size = os.lseek(fd, 0, os.SEEK_END)
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # a cut last line
            os.write(fd, (b"\n" if torn else b"") + canonical(chained) + b"\n")
            os.fsync(fd)
            return chained
        finally:
            os.close(fd)  # releases the lock

    def lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text) of every non-empty line; nothing when there is no log."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield number, line

    def records(self) -> list[dict[str, Any]]:
        """Every record that parses as a JSON object, in order (``verify`` judges them)."""
        found = []
        for _number, line in self.lines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found

    def verify(self) -> Verification:
        """Check every line: JSON object, its own hash, ``seq`` and ``prev_hash`` in order."""
        count, prev_hash = 0, GENESIS
        for number, line in self.lines():
            problem = _line_problem(line, count + 1, prev_hash)
            if problem:
                return Verification(str(self.path), count, number, problem)
            count += 1
            prev_hash = json.loads(line)["hash"]
        return Verification(str(self.path), count)


def _line_problem(line: str, seq: int, prev_hash: str) -> str | None:
    """Why ``line`` is not the record ``seq`` chained after ``prev_hash`` (None: it is)."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        return f"not JSON ({exc}): the line was edited or cut"
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        return "not an audit record (a JSON object with a hash)"
    if record_hash(record) != record["hash"]:
        return "its hash does not match its content: the record was edited"
    if record.get("seq") != seq:
        return (
            f"seq is {record.get('seq')!r} where {seq} was expected: "
            "a record before it was deleted, or records were reordered"
        )
    if record.get("prev_hash") != prev_hash:
        return "prev_hash does not match the record before it: records were deleted or reordered"
    return None


def _chain_end(fd: int) -> tuple[int, str]:
    """(seq, hash) of the last record in the open log (0 and GENESIS when empty). A last
    line that is not a record (a torn write) is chained onto by its raw bytes' hash, so
    appends go on and ``verify`` still names that line."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return 0, GENESIS
    start = max(0, size - _TAIL_BLOCK)
    tail = os.pread(fd, size - start, start)
    while start > 0 and tail.rstrip(b"\n").count(b"\n") == 0:
        start = max(0, start - _TAIL_BLOCK)
        tail = os.pread(fd, size - start, start)
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        record = json.loads(last)
        return int(record["seq"]), str(record["hash"])
    except (ValueError, KeyError, TypeError):
        lines = _count_lines(fd)
        return lines, hashlib.sha256(last).hexdigest()


def _count_lines(fd: int) -> int:
    count, offset = 0, 0
    while block := os.pread(fd, 1 << 20, offset):
        count += block.count(b"\n")
        offset += len(block)
    return count
