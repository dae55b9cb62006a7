"""A training data set's columns, whole, as numpy arrays: read in batches with pyarrow
through ``deployer.evaluation.data`` (CSV, JSON Lines, Parquet, ``scheme://`` URIs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from deployer.evaluation import data as datasets
from deployer.monitoring.profile import FEW_INTEGERS, Kind

Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class Column:
    """One column: its values (numbers as float64 with NaN, the rest as objects with
    None) and whether it is numeric or categorical."""

    name: str
    values: np.ndarray
    kind: Kind


def read_columns(data: datasets.DataSet, progress: Progress | None = None) -> list[Column]:
    """Every column of ``data``, in the file's order; a DataError names the file and column."""
    import pyarrow as pa

    schema = datasets.schema_of(data)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in schema.names}
    total, done = datasets.row_count(data), 0
    reader = _batches(data)
    try:
        for batch in reader:
            for name in schema.names:
                if name in batch.schema.names:
                    chunks[name].append(_values(batch.column(name)))
                else:  # a JSON line without the field
                    chunks[name].append(np.full(batch.num_rows, None, dtype=object))
            done += batch.num_rows
            if progress is not None:
                progress(done, total)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise datasets._arrow_error(data, exc, schema.names) from None
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
    if not done:
        raise datasets.DataError(f"{data.source}: no rows; expected a header and data rows")
    columns = []
    for field in schema:
        values = np.concatenate(chunks[field.name])
        columns.append(Column(field.name, values, _kind(field.type, values)))
    return columns


def _batches(data: datasets.DataSet) -> Iterator[Any]:
    if data.format == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(data.rewind()).iter_batches(batch_size=65536)
    return datasets._open_stream(data, None, None)


def _values(column: Any) -> np.ndarray:
    """An Arrow array as float64 (numbers, NaN for nulls) or objects (None for nulls)."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False))
    return np.asarray(column.to_pylist(), dtype=object)


def _kind(arrow_type: object, values: np.ndarray) -> Kind:
    """Text and booleans: categorical; integers with few distinct values: categorical."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        present = values[~np.isnan(values)]
        return "categorical" if np.unique(present).size <= FEW_INTEGERS else "numeric"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_null(arrow_type):
        return "numeric"
    return "categorical"
