"""Batch input and output files, streamed in chunks of rows (in-image: standard library,
numpy and orjson; Parquet only where pyarrow is installed).

A chunk is row-oriented: the file's column names and, per row, its values in that order
(CSV: text as written; JSON Lines: the decoded values; Parquet: Python values).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import IO, Any

import orjson

FORMATS = ("csv", "jsonl", "parquet")
EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SUFFIX = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}


class InputError(ValueError):
    """The input cannot be read as asked: names the file, the line or column, and what
    was expected (exit 2)."""


class MissingPyarrow(InputError):
    """Parquet without pyarrow installed (exit 3)."""


class Chunk:
    """Rows ``start`` .. ``start + size - 1`` (0-based data rows) of one file: as lists of
    values (``rows``), or as pyarrow columns (``columns``, one per name: the pyarrow
    reader's; ``rows`` then made from them when asked)."""

    def __init__(
        self,
        index: int,
        start: int,
        names: tuple[str, ...],
        rows: list[list[Any]] | None = None,
        columns: list[Any] | None = None,
    ) -> None:
        self.index, self.start, self.names = index, start, names
        self._rows, self.columns = rows, columns
        self.numbers: list[Any] | None = None  # pyarrow: columns parsed as float64 (or None)
        self.tokens: list[str] | None = None  # batch_text: the values, row after row

    @property
    def size(self) -> int:
        if self._rows is not None:
            return len(self._rows)
        if self.tokens is not None:
            return len(self.tokens) // len(self.names)
        return len(self.columns[0])  # type: ignore[index]

    @property
    def rows(self) -> list[list[Any]]:
        if self._rows is None and self.tokens is not None:
            width = len(self.names)
            self._rows = [self.tokens[i : i + width] for i in range(0, len(self.tokens), width)]
        if self._rows is None:
            lists = [column.to_pylist() for column in self.columns or []]
            self._rows = [list(row) for row in zip(*lists, strict=True)]
        return self._rows


def format_of(path: str, given: str | None) -> str:
    """The format asked for, else the one the file's extension says."""
    if given:
        if given not in FORMATS:
            raise InputError(f"--format {given!r}: expected one of {', '.join(FORMATS)}")
        return given
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise InputError(
            f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
            f"pass --format {'|'.join(FORMATS)}"
        )
    return EXTENSIONS[ext]


def input_files(path: str) -> list[str]:
    """The file itself, or a folder's files (not hidden, sorted by name)."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if not n.startswith((".", "_")))
        files = [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
        if not files:
            raise InputError(f"{path}: the folder holds no input files")
        return files
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file or folder")
    return [path]


def read_chunks(path: str, fmt: str, size: int) -> Iterator[Chunk]:
    """The file's rows, ``size`` at a time, in order (standard library; the pyarrow CSV
    reader is deployer.serving.batch_arrow's)."""
    if fmt == "csv":
        yield from _csv_chunks(path, size)
    elif fmt == "jsonl":
        yield from _jsonl_chunks(path, size)
    else:
        yield from _parquet_chunks(path, size)


def _csv_chunks(path: str, size: int) -> Iterator[Chunk]:
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv_rows(path, csv.reader(f), None, size=size)


def csv_rows(
    path: str,
    reader: Any,
    names: tuple[str, ...] | None,
    index: int = 0,
    start: int = 0,
    lines_before: int = 0,
    size: int = 1000,
) -> Iterator[Chunk]:
    """The chunks of a csv.reader's rows (its first row the header when ``names`` is
    None); ``index``, ``start``: the first chunk's; ``lines_before``: the file's lines
    before the reader's first (for the line numbers of errors)."""
    if names is None:
        try:
            names = tuple(next(reader))
        except StopIteration:
            raise InputError(f"{path}: empty file; expected a header row of column names") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: line 1: {exc}") from None
    width = len(names)
    try:
        while rows := list(islice(reader, size)):
            if any(len(row) != width for row in rows):
                rows = _checked(path, rows, width, start)
                if not rows:
                    continue
            yield Chunk(index, start, names, rows)
            index, start = index + 1, start + len(rows)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: line {lines_before + reader.line_num}: {exc}") from None


def _checked(path: str, rows: list[list[str]], width: int, start: int) -> list[list[str]]:
    """The rows without blank lines; InputError naming the first row of another width."""
    kept = [row for row in rows if row]
    for offset, row in enumerate(kept):
        if len(row) != width:
            raise InputError(
                f"{path}: data row {start + offset + 1}: {len(row)} values; the header has "
                f"{width} columns"
            )
    return kept


def _jsonl_chunks(path: str, size: int) -> Iterator[Chunk]:
    """Each line one object (its keys: the columns, the first line's order) or one array."""
    names: tuple[str, ...] | None = None
    rows: list[list[Any]] = []
    index = start = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{path}: line {number}: malformed JSON: {exc}") from None
            if names is None:
                names = tuple(item) if isinstance(item, dict) else ()
            if isinstance(item, dict):
                if not names:
                    raise InputError(f"{path}: line {number}: an object after rows of arrays")
                rows.append([item.get(name) for name in names])
            elif isinstance(item, list) and not names:
                rows.append(item)
            else:
                what = "an object with the columns" if names else "an array of features"
                raise InputError(f"{path}: line {number}: expected {what}")
            if len(rows) == size:
                yield Chunk(index, start, names, rows)
                index, start, rows = index + 1, start + size, []
    if rows:
        yield Chunk(index, start, names or (), rows)


def _pyarrow_parquet(path: str) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingPyarrow(
            f"{path}: Parquet needs pyarrow, which is not installed here "
            "(install deployer[evaluate], or give CSV or JSON Lines)"
        ) from None
    return pq


def _parquet_chunks(path: str, size: int) -> Iterator[Chunk]:
    pq = _pyarrow_parquet(path)
    try:
        source = pq.ParquetFile(path)
    except Exception as exc:
        raise InputError(f"{path}: not a Parquet file: {exc}") from None
    names = tuple(source.schema_arrow.names)
    start = 0
    for index, batch in enumerate(source.iter_batches(batch_size=size)):
        columns = [column.to_pylist() for column in batch.columns]
        rows = [list(row) for row in zip(*columns, strict=False)]
        yield Chunk(index, start, names, rows)
        start += len(rows)


class Writer:
    """Writes rows of output (``names`` then one value per name) to one file."""

    def __init__(
        self, path: str, fmt: str, names: Sequence[str], header: bool = True, sync: bool = True
    ) -> None:
        self.path, self.fmt, self.names, self.sync = path, fmt, tuple(names), sync
        self._table: list[list[Any]] = []
        self._file: IO[Any] | None = None
        if fmt == "csv":
            self._file = open(path, "wb")  # noqa: SIM115
            self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="")
            self._csv = csv.writer(self._text, lineterminator="\n")
            if header:
                self._csv.writerow(self.names)
        elif fmt == "jsonl":
            self._file = open(path, "wb")  # noqa: SIM115

    def write_bytes(self, data: bytes) -> None:
        """CSV lines already encoded (the pyarrow fast path's)."""
        self._text.flush()
        assert self._file is not None
        self._file.write(data)

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        if self.fmt == "csv":
            self._csv.writerows(rows)
        elif self.fmt == "jsonl":
            assert self._file is not None
            names = self.names
            self._file.write(
                b"".join(orjson.dumps(dict(zip(names, row, strict=False))) + b"\n" for row in rows)
            )
        else:
            self._table.extend(list(row) for row in rows)

    def close(self) -> None:
        if self._file is not None:
            if self.fmt == "csv":
                self._text.flush()
            self._file.flush()
            if self.sync:
                os.fsync(self._file.fileno())
            (self._text if self.fmt == "csv" else self._file).close()
            return
        pq = _pyarrow_parquet(self.path)
        import pyarrow as pa

        columns = {n: [row[i] for row in self._table] for i, n in enumerate(self.names)}
        pq.write_table(pa.table(columns), self.path)


def concatenate(parts: Sequence[str], fmt: str, names: Sequence[str], target: str) -> None:
    """Join chunk files (CSV parts without header) into ``target`` in the given order."""
    if fmt == "parquet":
        pq = _pyarrow_parquet(target)
        writer = None
        try:
            for part in parts:
                table = pq.read_table(part)
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            import pyarrow as pa

            pq.write_table(pa.table({n: [] for n in names}), target)
        return
    with open(target, "wb") as out:
        if fmt == "csv":
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerow(names)
            out.write(text.getvalue().encode())
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 20):
                    out.write(block)
        out.flush()
        os.fsync(out.fileno())
