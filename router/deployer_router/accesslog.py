"""Structured access log: one JSON object per client request, written in batches.

Fields: ``ts`` (unix seconds), ``method``, ``path`` (no query string: it may carry
secrets), ``status``, ``backend`` (the one that answered, or null), ``attempts``,
``ms`` (total time), ``in``/``out`` (body bytes), ``client`` (peer address) and, when the
router answered itself, ``error``. Headers are never logged, so neither are credentials.
``path`` and ``error`` are cut at ``limits.log_field_bytes`` (ending in ``...``), so a
long URL costs the log a bounded line. Lines are buffered and flushed every 200 ms or
every 512 lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any, BinaryIO

import orjson

from deployer.router.manifest import Limits

FIELDS = (
    "ts",
    "method",
    "path",
    "status",
    "backend",
    "attempts",
    "ms",
    "in",
    "out",
    "client",
    "error",
)
FLUSH_SECONDS = 0.2
FLUSH_LINES = 512
CUT = "..."
FIELD_BYTES: int = Limits.model_fields["log_field_bytes"].default


class AccessLog:
    def __init__(self, path: str = "-", field_bytes: int = FIELD_BYTES) -> None:
        self.field_bytes = field_bytes  # path and error are cut here
        self._lines: list[tuple[Any, ...]] = []
        self._own = path != "-"
        self._stream: BinaryIO = (
            open(path, "ab") if self._own else sys.stdout.buffer  # noqa: SIM115
        )
        self._task: asyncio.Task[None] | None = None

    def write(self, record: tuple[Any, ...]) -> None:
        """One request: a tuple of FIELDS' values, method and path as received bytes
        (turned into JSON when flushed, off the request's path)."""
        self._lines.append(record)
        if len(self._lines) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        records, self._lines = self._lines, []
        dumps = orjson.dumps
        cap = self.field_bytes
        lines = []
        for values in records:
            record = dict(zip(FIELDS, values, strict=True))
            record["method"] = record["method"][:cap].decode("latin-1")
            path = record["path"].split(b"?", 1)[0]
            record["path"] = _cut(path.decode("latin-1"), cap)
            record["ts"] = round(record["ts"], 3)
            record["ms"] = round(record["ms"], 2)
            if record["error"] is None:
                del record["error"]
            else:
                record["error"] = _cut(record["error"], cap)
            lines.append(dumps(record))
        data = b"\n".join(lines) + b"\n"
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(data)
            self._stream.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flusher())

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()

    async def stop(self) -> None:
        """Stop the flusher (and wait for it), then flush and close."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.close()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.flush()
        if self._own:
            with contextlib.suppress(OSError):
                self._stream.close()


def _cut(text: str, cap: int) -> str:
    return text if len(text) <= cap else text[:cap] + CUT


def open_log(enabled: bool, path: str, field_bytes: int = FIELD_BYTES) -> AccessLog | None:
    if not enabled:
        return None
    if path != "-":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return AccessLog(path, field_bytes)
