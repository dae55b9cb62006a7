"""A labelled data set read in batches with pyarrow: CSV, JSON Lines or Parquet.

Rows never become Python objects: each batch goes from Arrow columns to one 2-D numpy
array of features and one array of labels. A ``scheme://`` source is opened through
``deployer.providers.data_sources.open_uri`` (the provider's SDK) and spooled to a
temporary file while its sha256 is computed; a local file is hashed on its own.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from deployer.errors import ConfigError, UsageError, require_regular
from deployer.serving.batch_files import EXTENSIONS

FORMATS = EXTENSIONS  # a file's suffix -> csv | jsonl | parquet, as `deployer batch` reads
BLOCK_BYTES = 8 << 20  # what pyarrow's CSV/JSON readers parse at once
_SPOOL_BYTES = 64 << 20


class DataError(UsageError):
    """The data file cannot be evaluated: names the file, the column and what was expected."""


@dataclass
class DataSet:
    """An opened data set: where it came from, its format, sha256 and (Parquet) row count."""

    source: str
    format: str
    sha256: str
    handle: Any  # a local path (str) or a seekable binary file

    def rewind(self) -> Any:
        if not isinstance(self.handle, str):
            self.handle.seek(0)
        return self.handle


def format_of(source: str, given: str | None) -> str:
    """``csv``, ``jsonl`` or ``parquet``: ``given`` (``--format``) or the file's suffix."""
    if given:
        fmt = {"json": "jsonl", "ndjson": "jsonl"}.get(given.lower(), given.lower())
        if fmt not in ("csv", "jsonl", "parquet"):
            raise DataError(f"--format {given!r}: expected csv, jsonl or parquet")
        return fmt
    name = source.rsplit("/", 1)[-1].lower()
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise DataError(
        f"{source}: cannot tell the format from the name; expected a name ending in "
        f"{', '.join(FORMATS)}, or pass --format csv|jsonl|parquet"
    )


@contextmanager
def open_data(source: str, fmt: str | None = None) -> Iterator[DataSet]:
    """The data set at ``source`` (a local path or ``scheme://`` URI), closed afterwards."""
    kind = format_of(source, fmt)
    if "://" not in source:
        from deployer.lockfile import sha256_of

        path = Path(source)
        try:
            require_regular(path)  # a FIFO or a device is refused, never opened
        except ConfigError as exc:
            problem = "; ".join(exc.problems)
            wanted = "" if "expected" in problem else f"; expected a {kind} file"
            raise DataError(f"{source}: {problem}{wanted}") from None
        yield DataSet(source, kind, sha256_of(path), str(path))
        return
    spool: IO[bytes]
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        digest = _spool_uri(source, spool)
        spool.seek(0)
        yield DataSet(source, kind, digest, spool)


def _spool_uri(uri: str, spool: IO[bytes]) -> str:
    """Copy the object at ``uri`` into ``spool``; its sha256."""
    try:
        from deployer.providers.data_sources import open_uri
    except ImportError:
        raise DataError(
            f"{uri}: no data source for {uri.split('://', 1)[0]}:// is installed",
            hint="install the provider of that cloud: deployer-aws (s3://), deployer-gcp "
            "(gs://) or deployer-azure (az://)",
        ) from None
    digest = hashlib.sha256()
    with open_uri(uri).open() as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
            spool.write(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Columns:
    """Which columns hold the features (in the model's order) and the label."""

    features: tuple[str, ...]
    label: str


def _arrow_error(data: DataSet, exc: Exception, names: Sequence[str] = ()) -> DataError:
    """A pyarrow error as a DataError naming the file and, when pyarrow numbers it, the column."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    found = re.search(r"column #(\d+)", message)
    named = re.search(r"Column\(/([^)]+)\)", message)
    if found and int(found.group(1)) < len(names):
        message = f"column {names[int(found.group(1))]!r}: {message}"
    elif named:
        message = f"column {named.group(1)!r}: {message}"
    return DataError(f"{data.source}: cannot read it as {data.format}: {message}")


def schema_of(data: DataSet) -> Any:
    """The Arrow schema (CSV and JSON Lines: inferred from the first block)."""
    import pyarrow as pa

    try:
        if data.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(data.rewind()).schema_arrow
        reader = _open_stream(data, None, None)
        schema = reader.schema
        reader.close()
        return schema
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _arrow_error(data, exc) from None


def row_count(data: DataSet) -> int | None:
    """Rows in the file when its metadata says (Parquet), else None."""
    if data.format != "parquet":
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(data.rewind()).metadata.num_rows)


def choose_columns(
    data: DataSet,
    schema: Any,
    label: str,
    feature_names: Sequence[str] | None,
    width: int | None,
) -> Columns:
    """The feature columns: the model's own feature names when it has them, else every
    column but the label (their count must be the model's width); each must be numeric."""
    import pyarrow as pa

    names = list(schema.names)
    if label not in names:
        raise DataError(
            f"{data.source}: no label column {label!r}; the columns are {', '.join(names)}"
        )
    if feature_names:
        missing = [n for n in feature_names if n not in names]
        if missing:
            raise DataError(
                f"{data.source}: missing feature column(s) {', '.join(missing)}; the model "
                f"was trained on {', '.join(feature_names)}"
            )
        features = tuple(feature_names)
    else:
        features = tuple(n for n in names if n != label)
        if width is not None and len(features) != width:
            raise DataError(
                f"{data.source}: {len(features)} feature column(s) besides the label "
                f"{label!r} ({', '.join(features) or 'none'}); the model takes {width}"
            )
    if not features:
        raise DataError(f"{data.source}: no feature columns besides the label {label!r}")
    for name in features:
        kind = schema.field(name).type
        numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
        if not any(test(kind) for test in (*numeric, pa.types.is_null, pa.types.is_decimal)):
            raise DataError(
                f"{data.source}: column {name!r} holds non-numeric values ({kind}); "
                "expected numbers in every feature column"
            )
    return Columns(features, label)


def _open_stream(data: DataSet, columns: Columns | None, label_type: Any) -> Any:
    """A pyarrow streaming reader of a CSV or JSON Lines file (features read as float64)."""
    import pyarrow as pa

    wanted = None
    if columns is not None:
        wanted = {name: pa.float64() for name in columns.features}
        wanted[columns.label] = label_type
    if data.format == "csv":
        import pyarrow.csv as pcsv

        convert = pcsv.ConvertOptions(
            column_types=wanted or {},
            include_columns=[*columns.features, columns.label] if columns else None,
        )
        options = pcsv.ReadOptions(block_size=BLOCK_BYTES)
        return pcsv.open_csv(data.rewind(), read_options=options, convert_options=convert)
    import pyarrow.json as pjson

    parse = pjson.ParseOptions(
        explicit_schema=pa.schema(list(wanted.items())) if wanted else None,
        unexpected_field_behavior="ignore" if wanted else "infer",
    )
    return pjson.open_json(
        data.rewind(), read_options=pjson.ReadOptions(block_size=BLOCK_BYTES), parse_options=parse
    )


def _record_batches(data: DataSet, columns: Columns, schema: Any, size: int) -> Iterator[Any]:
    """Arrow record batches of the wanted columns, at most ``size`` rows each."""
    if data.format == "parquet":
        import pyarrow.parquet as pq

        wanted = [*columns.features, columns.label]
        yield from pq.ParquetFile(data.rewind()).iter_batches(batch_size=size, columns=wanted)
        return
    reader = _open_stream(data, columns, schema.field(columns.label).type)
    try:
        for batch in reader:
            for start in range(0, batch.num_rows, size):
                yield batch.slice(start, size)
    finally:
        reader.close()


def batches(
    data: DataSet, columns: Columns, schema: Any, size: int, dtype: np.dtype[Any]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(features, labels) per batch of at most ``size`` rows; features as ``dtype``."""
    import pyarrow as pa

    seen = 0
    stream = _record_batches(data, columns, schema, size)
    while True:
        try:
            batch = next(stream)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise _arrow_error(data, exc, schema.names if data.format == "csv" else ()) from None
        if batch.num_rows == 0:
            continue
        yield _features(data, batch, columns, dtype), _labels(data, batch, columns, seen)
        seen += batch.num_rows


def _features(data: DataSet, batch: Any, columns: Columns, dtype: np.dtype[Any]) -> np.ndarray:
    rows = np.empty((batch.num_rows, len(columns.features)), dtype=dtype)
    for index, name in enumerate(columns.features):
        try:
            rows[:, index] = batch.column(name).to_numpy(zero_copy_only=False)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"{data.source}: column {name!r}: {exc}; expected numbers in every feature column"
            ) from None
    return rows


def _labels(data: DataSet, batch: Any, columns: Columns, seen: int) -> np.ndarray:
    column = batch.column(columns.label)
    if column.null_count:
        first = next(i for i, valid in enumerate(column.is_valid().to_pylist()) if not valid)
        raise DataError(
            f"{data.source}: label column {columns.label!r} is empty in data row "
            f"{seen + first + 1}; expected a label in every row"
        )
    return np.asarray(column.to_numpy(zero_copy_only=False))
