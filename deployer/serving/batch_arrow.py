"""The batch runner's pyarrow fast path for CSV (where pyarrow is installed: in process on
the host; the serving image has none): the file read in blocks as text columns (every
value as written, as the csv module reads it), feature columns parsed to float64 by
pyarrow, the output written by pyarrow's CSV writer. A block it cannot parse falls back to
the row-by-row path, which names the rows."""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from deployer.serving.batch_files import Chunk, InputError


@functools.cache
def available() -> bool:
    try:
        import pyarrow.compute
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def csv_chunks(path: str, size: int) -> Iterator[Chunk]:
    """The file's rows, ``size`` at a time, as pyarrow string columns."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        with open(path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: line 1: {exc}") from None
    if not header:
        raise InputError(f"{path}: empty file; expected a header row of column names")
    names = tuple(header)
    convert = pcsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    read = pcsv.ReadOptions(block_size=1 << 20, use_threads=False)
    try:
        # read(2), not a memory map: the file's pages do not stay resident (memory flat)
        with pa.OSFile(path) as source:
            reader = pcsv.open_csv(source, read_options=read, convert_options=convert)
            yield from _sliced(reader, names, size)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: {exc}") from None


def _sliced(reader: Any, names: tuple[str, ...], size: int) -> Iterator[Chunk]:
    """The reader's record batches re-cut into chunks of ``size`` rows."""
    import pyarrow as pa

    pending: list[Any] = []
    held = index = start = 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        if held < size:
            continue
        table, offset = pa.Table.from_batches(pending), 0
        parsed = _Parsed(table)
        while held - offset >= size:
            yield _chunk(index, start, names, table, parsed, offset, size)
            index, start, offset = index + 1, start + size, offset + size
        pending, held = table.slice(offset).to_batches(), held - offset
    if held:
        table = pa.Table.from_batches(pending)
        yield _chunk(index, start, names, table, _Parsed(table), 0, held)


class _Parsed:
    """A read block's columns as float64, each parsed (once per block, not per chunk)
    when a chunk first asks for it; None: some value is not a number."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.done: dict[int, Any] = {}

    def column(self, i: int) -> Any:
        if i not in self.done:
            import pyarrow as pa
            import pyarrow.compute as pc

            try:
                self.done[i] = pc.cast(self.table.column(i), pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.done[i] = None
        return self.done[i]


class _Numbers:
    """One chunk's rows of a block's parsed columns (``Chunk.numbers``)."""

    def __init__(self, parsed: _Parsed, offset: int, size: int) -> None:
        self.parsed, self.offset, self.size = parsed, offset, size

    def __len__(self) -> int:
        return int(self.parsed.table.num_columns)

    def __getitem__(self, i: int) -> Any:
        column = self.parsed.column(i)
        return None if column is None else column.slice(self.offset, self.size)


def _chunk(
    index: int,
    start: int,
    names: tuple[str, ...],
    table: Any,
    parsed: _Parsed,
    offset: int,
    size: int,
) -> Chunk:
    columns = [c.slice(offset, size) for c in table.columns]
    chunk = Chunk(index, start, names, columns=columns)
    chunk.numbers = _Numbers(parsed, offset, size)  # type: ignore[assignment]
    return chunk


def numbers(chunk: Chunk, idx: Sequence[int]) -> np.ndarray:
    """The feature columns as a float64 (rows, features) array; ValueError when a value is
    not a number (the caller then goes row by row, naming it)."""
    parsed = chunk.numbers or []
    out = np.empty((chunk.size, len(idx)), dtype=np.float64)
    for j, i in enumerate(idx):
        if i >= len(parsed) or parsed[i] is None:
            raise ValueError(f"column {chunk.names[i]!r} holds values that are not numbers")
        out[:, j] = parsed[i].to_numpy()
    return out


def table(names: Sequence[str], keep: Sequence[Any], values: Any) -> Any:
    """The output block: the keep columns as read, then the prediction column(s)."""
    import pyarrow as pa

    width = len(names) - len(keep)
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        array = values.reshape(len(values), -1)
        predictions = [pa.array(array[:, j]) for j in range(width)]
    else:
        listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
        columns = [listed] if width == 1 else [list(c) for c in zip(*listed, strict=True)]
        predictions = [pa.array(c) for c in columns]
    return pa.table(dict(zip(names, [*keep, *predictions], strict=True)))


def csv_bytes(block: Any) -> bytes | None:
    """``block`` as CSV lines without a header and no quotes (as the csv module writes
    values that need none); None when some value needs quoting (the caller writes it)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    sink = pa.BufferOutputStream()
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    try:
        pcsv.write_csv(block, sink, options)
    except pa.ArrowInvalid:
        return None
    return bytes(sink.getvalue())
