"""The batch runner's standard-library fast path for CSV (the serving image has no
pyarrow): each chunk's lines read at once, decoded once and split on commas into one
flat list of values (``Chunk.tokens``), the numeric feature columns cast by orjson (JSON
numbers) or else numpy, the output lines joined from the keep values and the predictions.

It reads exactly what the csv module reads, as long as the file holds no quote, no
carriage return (but in CR LF line ends) and no blank line; from the first chunk that
does (or that does not split into whole rows, is not UTF-8, or has a line longer than
the csv module's field size limit) the rest of the file is read by the csv module
(``batch_files.csv_rows``), which names the row and line of any error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from itertools import chain, islice
from typing import Any

import numpy as np
import orjson

from deployer.serving.batch_files import Chunk, InputError, csv_rows


def csv_chunks(path: str, size: int) -> Iterator[Chunk]:
    """The file's rows, ``size`` at a time, in order."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; handed to the csv module on fallback)
    except OSError as exc:
        raise InputError(f"{path}: {exc}") from None
    with f:
        first = f.readline()
        try:
            header = next(csv.reader([first.decode("utf-8")]), None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: line 1: {exc}") from None
        bare = first[:-2] if first.endswith(b"\r\n") else first
        if not header or b'"' in first or b"\r" in bare:
            f.seek(0)
            yield from _rest(path, f, [], size, 0, 0, None)
            return
        names = tuple(header)
        width = len(names)
        index = start = 0
        while lines := list(islice(f, size)):
            tokens = _split(lines, width)
            if tokens is None:  # something only the csv module reads right
                yield from _rest(path, f, lines, size, index, start, names)
                return
            chunk = Chunk(index, start, names)
            chunk.tokens = tokens
            yield chunk
            index, start = index + 1, start + len(lines)


def _split(lines: list[bytes], width: int) -> list[str] | None:
    """The lines' values, row after row; None when the csv module must read them."""
    data = b"".join(lines)
    if b"\r" in data:  # the csv module ends rows at \r\n as at \n
        data = data.replace(b"\r\n", b"\n")
    if b'"' in data or b"\r" in data or b"\n\n" in data or data.startswith(b"\n"):
        return None
    limit = csv.field_size_limit()  # a longer value is the csv module's error
    if len(data) > limit and any(len(line) > limit for line in lines):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.endswith("\n"):
        text += "\n"
    tokens = text.replace("\n", ",").split(",")
    tokens.pop()  # after the last row's comma
    return tokens if len(tokens) == len(lines) * width else None


def _rest(
    path: str,
    f: io.BufferedReader,
    lines: list[bytes],
    size: int,
    index: int,
    start: int,
    names: tuple[str, ...] | None,
) -> Iterator[Chunk]:
    """The csv module's chunks from ``lines`` then the rest of ``f`` on (``names`` None:
    from the header on)."""
    read = io.TextIOWrapper(io.BytesIO(b"".join(lines)), encoding="utf-8", newline="")
    rest = io.TextIOWrapper(f, encoding="utf-8", newline="")
    reader = csv.reader(chain(read, rest))
    before = 0 if names is None else start + 1
    yield from csv_rows(path, reader, names, index, start, before, size)


def numbers(chunk: Chunk, idx: Sequence[int]) -> np.ndarray:
    """The feature columns as float64 (rows, features), cast as the online CSV body is
    (numpy's cast of the text); ValueError when a value is not a number."""
    tokens, width = chunk.tokens or [], len(chunk.names)
    columns = [tokens[i::width] for i in idx]
    try:  # JSON numbers (most CSV numbers are): parsed by orjson, twice as fast
        return np.array([_json_numbers(c) for c in columns], dtype=np.float64).T
    except ValueError:
        return np.array(columns, dtype=np.float64).T


# Characters of JSON values other than numbers: true, false, null, arrays, objects (a
# value holds no comma or quote here). Without them, a JSON value is a number.
_NOT_NUMBERS = ("t", "f", "n", "[", "{")


def _json_numbers(column: list[str]) -> list[float]:
    """The values as JSON numbers (what float() makes of them); ValueError when one is
    not a JSON number ("nan", "+1", "1.", ...) or is "-0" (JSON's integer 0)."""
    text = ",".join(column)
    if any(c in text for c in _NOT_NUMBERS) or ",-0," in f",{text},":
        raise ValueError("not only JSON numbers")
    try:
        values = orjson.loads("[" + text + "]")
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    if len(values) != len(column):
        raise ValueError("not one number per value")
    return values


def csv_lines(chunk: Chunk, keep: Sequence[int], values: Any) -> bytes | None:
    """The output rows (keep values as read, then the prediction) as CSV bytes, as the
    csv module writes them; None when the predictions are not plain numbers (the caller
    writes rows)."""
    if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind not in "biuf":
        return None
    tokens, width = chunk.tokens or [], len(chunk.names)
    predictions = map(str, values.tolist())
    if not keep:
        return ("\n".join(predictions) + "\n").encode()
    kept = [tokens[i::width] for i in keep]
    return ("\n".join(map(",".join, zip(*kept, predictions, strict=True))) + "\n").encode()
