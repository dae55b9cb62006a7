"""Resumable batch output: one output file assembled from chunk files.

While a file is scored its output lives in ``<output>.partial/``: part k (a run of
consecutive chunks, about 50,000 rows) has its rows in ``k.part`` and then its record
(rows, scored, failed, failures, output columns) in ``k.json``, each written to a
temporary name and renamed, so a part is either done (its record exists) or not there at
all. A re-run after Ctrl-C or a killed process skips the done parts (no row scored twice)
and scores the rest (none lost); the last part done, the parts are joined in order into
``<output>`` (synced, renamed into place) and the folder removed. Parts are not synced
one by one (that cost more than scoring): an operating-system crash may lose the parts
written just before it, which a re-run scores again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from typing import Any

from deployer.serving.batch_arrow import csv_bytes
from deployer.serving.batch_files import Writer, concatenate


class Parts:
    """The chunk files of one output file."""

    def __init__(self, output: str, fmt: str) -> None:
        self.output, self.fmt = output, fmt
        self.folder = output + ".partial"

    def _path(self, index: int, ext: str) -> str:
        return os.path.join(self.folder, f"{index:09d}.{ext}")

    def done(self) -> dict[int, dict[str, Any]]:
        """The records of the chunks already done, by chunk index."""
        if not os.path.isdir(self.folder):
            return {}
        records = {}
        for name in os.listdir(self.folder):
            stem, _, ext = name.partition(".")
            if ext == "json" and stem.isdigit():
                with open(os.path.join(self.folder, name), encoding="utf-8") as f:
                    records[int(stem)] = json.load(f)
        return records

    def write(
        self,
        index: int,
        names: Sequence[str],
        blocks: Sequence[Any],
        record: dict[str, Any],
    ) -> None:
        """Part ``index``: its blocks (lists of rows, CSV bytes or pyarrow tables), then its record
        (what marks it done)."""
        os.makedirs(self.folder, exist_ok=True)
        part = self._path(index, "part")
        writer = Writer(part + ".tmp", self.fmt, names, header=False, sync=False)
        for block in _joined(blocks):
            if isinstance(block, list):
                writer.write(block)
                continue
            if isinstance(block, bytes):  # CSV lines (batch_text's)
                writer.write_bytes(block)
                continue
            data = csv_bytes(block) if self.fmt == "csv" else None
            if data is None:  # a value needing quotes (or not CSV): written row by row
                writer.write([list(row.values()) for row in block.to_pylist()])
            else:
                writer.write_bytes(data)
        writer.close()
        os.replace(part + ".tmp", part)
        meta = self._path(index, "json")
        with open(meta + ".tmp", "w", encoding="utf-8") as f:
            json.dump({**record, "names": list(names)}, f)
        os.replace(meta + ".tmp", meta)

    def assemble(self, names: Sequence[str]) -> None:
        """Join every done chunk, in order, into the output file; remove the parts."""
        indexes = sorted(self.done())
        parts = [self._path(i, "part") for i in indexes]
        temporary = self.output + ".tmp"
        concatenate(parts, self.fmt, names, temporary)
        os.replace(temporary, self.output)
        shutil.rmtree(self.folder, ignore_errors=True)


def _joined(blocks: Sequence[Any]) -> list[Any]:
    """The blocks with each run of pyarrow tables made one table (one CSV write)."""
    out: list[Any] = []
    run: list[Any] = []
    for block in [*blocks, None]:
        if block is not None and not isinstance(block, (list, bytes)):
            run.append(block)
            continue
        if run:
            import pyarrow as pa

            try:
                out.append(pa.concat_tables(run))
            except pa.ArrowInvalid:  # columns of other types: one write each
                out.extend(run)
            run = []
        if block is not None:
            out.append(block)
    return out
