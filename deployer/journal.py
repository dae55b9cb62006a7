"""The push journal: a thread-safe record of every step of a push, and its file.

Each entry is also forwarded to the live view (the CLI's per-target lines). After a push
the whole result is written as JSON under .deployer/journal/ (see ``write_journal``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Event = Callable[[str, str], None]  # (target, message)


@dataclass(frozen=True)
class JournalEntry:
    seconds: float
    target: str
    step: str
    detail: str = ""


class Journal:
    """Thread-safe record of every step; forwards each entry to the live view."""

    def __init__(self, event: Event | None = None) -> None:
        self.entries: list[JournalEntry] = []
        self._event = event
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def record(self, target: str, step: str, detail: str = "") -> None:
        entry = JournalEntry(round(time.monotonic() - self._started, 3), target, step, detail)
        with self._lock:
            self.entries.append(entry)
        if self._event:
            self._event(target, f"{step}: {detail}" if detail else step)

    def for_target(self, target: str) -> list[JournalEntry]:
        return [e for e in self.entries if e.target == target]


def write_journal(folder: Path, version: str, document: dict[str, Any]) -> Path:
    """Write a push's result as FOLDER/UTC_STAMP-VERSION.json (the folder is created)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"{stamp}-{version}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
