"""The in-image batch runner: score files of rows with the model the server would load.

Command line (exit 0: every row scored; 1: some rows failed, each failure one JSON line on
stderr ``{"file", "rows", "error"}``; 2: bad input; 3: the model or a library missing)::

    python -m deployer.serving.batch_runner --input PATH --output PATH [--format csv|jsonl|parquet]
        [--keep a,b] [--label y] [--columns a,b,c] [--rows-per-batch N]
        [--shard-index I --shard-count N] [--workers W] [--progress]

PATH: a file, or a folder of files (then ``--output`` is a folder: one output file per
input file, same name, the format's extension). Shard I of N takes every Nth file of the
folder (sorted by name: files I, I+N, ...); with one input file it takes every Nth chunk of
``--rows-per-batch`` rows (chunks I, I+N, ...) into ``<stem>.shard-I-of-N<ext>``.
``--workers W``: W processes score each file (``deployer.serving.batch_workers``). Output:
per input row, in input order, the keep columns then ``prediction`` (or ``prediction_0``..
for a model answering several values per row; JSON Lines: one list). ``--progress`` prints
one JSON line per chunk on stdout. Interrupted runs resume (``deployer.serving.batch_parts``).
Parquet needs pyarrow (not in the serving image: the local target scores Parquet with
``--endpoint`` or ``--in-process``, read on the host).

Functions for other drivers (the Azure ML scoring script, the local target in process)::

    load(settings: ServingSettings | None = None, method: str | None = None) -> Scorer
    score_file(scorer: ScoresRows, in_path: str, out_path: str, options: BatchOptions,
               on_chunk: Callable[[FileCounts], None] | None = None) -> FileCounts
    score_path(scorer: ScoresRows, input: str, output: str, options: BatchOptions,
               on_chunk=None) -> list[FileCounts]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import orjson

from deployer.flavors.base import Signature
from deployer.serving import batch_arrow, batch_text
from deployer.serving.batch_files import (
    SUFFIX,
    Chunk,
    InputError,
    format_of,
    input_files,
    read_chunks,
)
from deployer.serving.batch_files import MissingPyarrow as MissingPyarrow
from deployer.serving.batch_parts import Parts
from deployer.serving.batch_shaping import (
    Layout,
    chunk_features,
    features,
    kept,
    layout,
    model_feature_names,
)
from deployer.serving.batch_workers import in_processes
from deployer.serving.errors import HTTPError
from deployer.serving.runner import ModelRunner
from deployer.serving.settings import ServingSettings
from deployer.serving.tensors import named_outputs, per_row, select


@dataclass(frozen=True)
class BatchOptions:
    """How to read and shape the input (the command line's options)."""

    format: str | None = None
    keep: tuple[str, ...] = ()
    label: str | None = None
    columns: tuple[str, ...] = ()
    rows_per_batch: int = 1000
    shard_index: int = 0
    shard_count: int = 1
    rows_per_part: int = 50_000  # checkpoint granularity (at most 50 chunks a part)
    workers: int = 1  # processes scoring one file (deployer.serving.batch_workers)


@dataclass
class FileCounts:
    """One input file's outcome: rows read, scored, failed, and the failures."""

    input: str
    output: str
    rows: int = 0
    scored: int = 0
    failed: int = 0
    skipped: bool = False  # already complete from an earlier run
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        """Count a chunk's (or a done part's) record."""
        self.rows += record["rows"]
        self.scored += record["scored"]
        self.failed += record["failed"]
        self.failures.extend(record["failures"])

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ScoresRows(Protocol):
    """What scoring a file needs of the model: its signature, the estimator's own feature
    names, whether rows are independent (then a part is one call), and predict."""

    signature: Signature
    model_names: tuple[str, ...]
    row_wise: bool
    overlaps: bool  # predict waits on another process: read the next part meanwhile

    def predict(self, inputs: Any) -> list[Any]: ...

    def predict_array(self, inputs: Any) -> Any: ...


class ScorerUnavailable(RuntimeError):
    """The model cannot be asked at all (a deployment down): the run stops, no row is
    marked failed (a re-run resumes)."""


# Flavours whose predictions are a function of each row alone: a part's chunks are
# predicted in one call (fewer, larger calls), the same values as chunk by chunk.
ROW_WISE = frozenset({"sklearn", "xgboost", "lightgbm", "catboost", "onnx"})


class Scorer:
    """The loaded model and the method batch answers with (the server's default)."""

    def __init__(self, runner: ModelRunner, method: str | None = None) -> None:
        self.runner = runner
        self.model = runner.require_model()
        self.signature = self.model.signature
        self.method = method or runner.default_method()
        self.model_names = model_feature_names(self.model)
        self.row_wise = runner.settings.flavor in ROW_WISE
        self.overlaps = False  # the model runs in this process: nothing to overlap

    def predict(self, inputs: Any) -> list[Any]:
        """One value (or list) per row; BadRequest or the model's own error."""
        return _listed(self.predict_array(inputs))

    def predict_array(self, inputs: Any) -> Any:
        """The predictions as an array (a tabular model) or one value per row (tensors)."""
        if self.signature.is_tensor:
            default = self.runner.settings.default_method or None
            result = self.runner._predict_now(inputs, self.signature.methods[0])
            return per_row(select(named_outputs(result, self.signature), default))
        return np.asarray(self.runner._predict_now(inputs, self.method))


def _listed(values: Any) -> list[Any]:
    return list(values.tolist()) if isinstance(values, np.ndarray) else list(values)


def load(settings: ServingSettings | None = None, method: str | None = None) -> Scorer:
    """The model as the server loads it (``ModelRunner``: flavour, threshold); settings
    from the image's environment when not given. RuntimeError when it fails to load."""
    runner = ModelRunner(settings or ServingSettings.from_environment())
    runner.start(exit_on_failure=False).join()
    if runner.model is None:
        raise RuntimeError(runner.load_error or "the model failed to load")
    return Scorer(runner, method)


def _prediction_names(values: list[Any], fmt: str) -> list[str]:
    first = values[0] if values else None
    if not isinstance(first, list) or fmt == "jsonl":
        return ["prediction"]
    if len(first) > 1 and all(not isinstance(v, (list, dict)) for v in first):
        return [f"prediction_{i}" for i in range(len(first))]
    return ["prediction"]


def _cells(value: Any, width: int, fmt: str) -> list[Any]:
    if width > 1:
        return list(value)
    if fmt != "jsonl" and isinstance(value, (list, dict)):
        return [orjson.dumps(value).decode()]
    return [value]


def _span(rows: list[int]) -> str:
    """Row numbers (1 = the first data row) as ``3`` or ``3-40``."""
    return str(rows[0]) if len(rows) == 1 else f"{rows[0]}-{rows[-1]}"


# A chunk's outcome: the offsets of the rows scored (None: all), their predictions, the
# failures.
Scored = tuple[list[int] | None, Any, list[dict[str, Any]]]


def _score_rows(scorer: ScoresRows, chunk: Chunk, plan: Layout, path: str) -> Scored:
    """(offsets of the rows scored, None: all; their predictions; the failures). When the
    chunk fails, each row alone, to name the rows."""
    try:
        return None, scorer.predict_array(chunk_features(chunk, plan, scorer.signature)), []
    except ScorerUnavailable:
        raise
    except Exception as whole:
        if chunk.size == 1:
            return [], [], [_failure(path, [chunk.start + 1], whole)]
    offsets: list[int] = []
    values: list[Any] = []
    failures: list[dict[str, Any]] = []
    for offset, row in enumerate(chunk.rows):
        try:
            values.append(scorer.predict(features([row], plan, scorer.signature))[0])
            offsets.append(offset)
        except ScorerUnavailable:
            raise
        except Exception as exc:
            failure = _failure(path, [chunk.start + offset + 1], exc)
            last = failures[-1] if failures else None
            if last and last["error"] == failure["error"] and last["_end"] == offset + chunk.start:
                last["_end"] = offset + chunk.start + 1
                last["rows"] = f"{last['rows'].split('-')[0]}-{offset + chunk.start + 1}"
            else:
                failures.append(failure)
    return offsets, values, failures


GROUP_VALUES = 8_000_000  # at most this many feature values in one call


def _score_group(scorer: ScoresRows, group: list[Chunk], plan: Layout, path: str) -> list[Scored]:
    """``_score_rows`` of each chunk: one predict call for them all where the model is
    row-wise and every chunk scores; else (or when that call fails) chunk by chunk."""
    tabular = not scorer.signature.is_tensor
    if len(group) > 1 and tabular and scorer.row_wise:
        try:
            inputs = [chunk_features(c, plan, scorer.signature) for c in group]
            joined = np.concatenate(inputs) if _arrays(inputs) else None
            if joined is not None and joined.size <= GROUP_VALUES:
                values = scorer.predict_array(joined)
                if isinstance(values, np.ndarray) and len(values) == len(joined):
                    bounds = np.cumsum([len(x) for x in inputs])[:-1]
                    return [(None, v, []) for v in np.split(values, bounds)]
        except ScorerUnavailable:
            raise
        except Exception:  # chunk by chunk names the rows that fail
            pass
    return [_score_rows(scorer, chunk, plan, path) for chunk in group]


def _arrays(inputs: list[Any]) -> bool:
    return all(isinstance(x, np.ndarray) and x.ndim == 2 for x in inputs)


def _failure(path: str, rows: list[int], exc: Exception) -> dict[str, Any]:
    message = exc.message if isinstance(exc, HTTPError) else f"{type(exc).__name__}: {exc}"
    return {"file": path, "rows": _span(rows), "error": message, "_end": rows[-1]}


def _chunks(path: str, fmt: str, size: int) -> Iterator[Chunk]:
    """The file's chunks: CSV through pyarrow where it is installed, else batch_text's."""
    if fmt == "csv":
        return (batch_arrow if batch_arrow.available() else batch_text).csv_chunks(path, size)
    return read_chunks(path, fmt, size)


def chunks_per_part(options: BatchOptions) -> int:
    """How many chunks one checkpoint part holds: about rows_per_part rows, at most 50."""
    return max(1, min(options.rows_per_part // options.rows_per_batch, 50))


def score_file(
    scorer: ScoresRows,
    in_path: str,
    out_path: str,
    options: BatchOptions,
    on_chunk: Callable[[FileCounts], None] | None = None,
    chunk_shard: bool = False,
    part_shard: tuple[int, int] | None = None,
) -> FileCounts:
    """Score one file into ``out_path`` (resumably: a re-run with the same options skips
    the parts done); ``chunk_shard``: only this shard's chunks; ``part_shard`` (i, n):
    only parts i, i+n, ..., and not assembled (batch_workers' processes)."""
    counts = FileCounts(in_path, out_path)
    if os.path.exists(out_path) and not os.path.isdir(out_path + ".partial"):
        counts.skipped = True
        return counts
    if options.workers > 1 and part_shard is None:
        single = replace(options, workers=1)

        def score(shard: tuple[int, int] | None) -> FileCounts:
            report = on_chunk if shard is None or shard[0] == 0 else None
            return score_file(scorer, in_path, out_path, single, report, chunk_shard, shard)

        return in_processes(options.workers, score)
    fmt = format_of(in_path, options.format)
    parts = Parts(out_path, fmt)
    done = parts.done()
    for record in done.values():
        counts.add(record)
    names: list[str] | None = next((r["names"] for r in done.values() if r["names"]), None)
    per_part = chunks_per_part(options)
    plan: Layout | None = None
    group: list[Chunk] = []

    def write(batch: list[Chunk], results: list[Scored]) -> None:
        """Write one scored part, count it, report."""
        nonlocal names
        assert plan is not None
        pending = _Pending(batch[0].index // per_part)
        for chunk, (offsets, values, failures) in zip(batch, results, strict=True):
            for failure in failures:
                failure.pop("_end", None)
            scored = chunk.size if offsets is None else len(offsets)
            if names is None and scored:
                names = [*plan.keep_names, *_prediction_names(_listed(values[:1]), fmt)]
            pending.blocks.append(_block(chunk, plan, offsets, values, names or [], fmt))
            record = {
                "rows": chunk.size,
                "scored": scored,
                "failed": chunk.size - scored,
                "failures": failures,
            }
            pending.add(record)
            counts.add(record)
        parts.write(pending.index, names or [], pending.blocks, pending.record)
        if on_chunk is not None:
            on_chunk(counts)

    # A scorer that waits on another process (overlaps) scores the parts in order on one
    # thread, the next part queued behind the one in flight, while this thread reads the
    # part after and writes the one before: at most three parts held; written in order.
    ahead = ThreadPoolExecutor(1) if scorer.overlaps else None
    in_flight: list[tuple[list[Chunk], Future[list[Scored]]]] = []

    def finish() -> None:
        """Score the chunks of one part (queued on the thread, when overlapping) and write
        it (when overlapping: write the parts before it that are done or next in line)."""
        assert plan is not None
        batch = group.copy()
        group.clear()
        if ahead is None:
            write(batch, _score_group(scorer, batch, plan, in_path))
            return
        in_flight.append((batch, ahead.submit(_score_group, scorer, batch, plan, in_path)))
        drain(keep=1)

    def drain(keep: int = 0) -> None:
        """Write the parts scored, oldest first, until ``keep`` remain in flight."""
        while len(in_flight) > keep:
            batch, future = in_flight.pop(0)
            write(batch, future.result())

    def _read_parts() -> None:
        """Read the file part by part, each part scored and written as it fills."""
        nonlocal plan
        for chunk in _chunks(in_path, fmt, options.rows_per_batch):
            if chunk_shard and chunk.index % options.shard_count != options.shard_index:
                continue
            if plan is None:
                plan = layout(
                    in_path,
                    chunk,
                    scorer.signature,
                    options.columns,
                    options.keep,
                    options.label,
                    scorer.model_names,
                    text=fmt == "csv",
                )
            part = chunk.index // per_part
            if part in done or (part_shard and part % part_shard[1] != part_shard[0]):
                continue
            if group and group[0].index // per_part != part:
                finish()
            group.append(chunk)
            if (chunk.index + 1) % per_part == 0:  # the part is full: checkpoint it now
                finish()
        if group:
            finish()
        drain()

    try:
        _read_parts()
    finally:
        if ahead is not None:
            ahead.shutdown(wait=True)

    if part_shard is not None:
        return counts
    if names is None:
        names = [*(plan.keep_names if plan else options.keep), "prediction"]
    parts.assemble(names)
    return counts


def _block(
    chunk: Chunk,
    plan: Layout,
    offsets: list[int] | None,
    values: Any,
    names: list[str],
    fmt: str,
) -> Any:
    """The chunk's output rows: a pyarrow table when the chunk came as pyarrow columns and
    every row was scored (CSV), CSV bytes when it came as batch_text's values, else
    lists of values."""
    if offsets is None and chunk.tokens is not None and fmt == "csv" and len(values):
        data = batch_text.csv_lines(chunk, plan.keep, values)
        if data is not None:
            return data
    if offsets is None and chunk.columns is not None and fmt == "csv" and len(values):
        from deployer.serving.batch_arrow import table

        return table(names, [chunk.columns[i] for i in plan.keep], values)
    width = len(names) - len(plan.keep_names)
    rows = chunk.rows
    keeps = kept(rows if offsets is None else [rows[i] for i in offsets], plan)
    listed = _listed(values)
    if width == 1 and not any(isinstance(v, (list, dict)) for v in listed):
        for k, v in zip(keeps, listed, strict=True):  # the common case, without a call per row
            k.append(v)
        return keeps
    return [k + _cells(v, width, fmt) for k, v in zip(keeps, listed, strict=True)]


class _Pending:
    """The rows and counts of the part being filled."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.blocks: list[Any] = []  # lists of rows, or pyarrow tables
        self.record: dict[str, Any] = {"rows": 0, "scored": 0, "failed": 0, "failures": []}

    def add(self, record: dict[str, Any]) -> None:
        for key in ("rows", "scored", "failed"):
            self.record[key] += record[key]
        self.record["failures"].extend(record["failures"])


def outputs_for(input: str, output: str, options: BatchOptions) -> list[tuple[str, str, bool]]:
    """(input file, output file, shard by chunks) for this shard."""
    files = input_files(input)
    count, index = options.shard_count, options.shard_index
    if not 0 <= index < count:
        raise InputError(
            f"--shard-index {index}: expected 0 to {count - 1} (--shard-count {count})"
        )
    if os.path.isdir(input):
        os.makedirs(output, exist_ok=True)
        chosen = files[index::count]
        return [(f, os.path.join(output, _out_name(f, options)), False) for f in chosen]
    target = output
    if output.endswith(os.sep) or os.path.isdir(output):
        os.makedirs(output, exist_ok=True)
        target = os.path.join(output, _out_name(files[0], options))
    if count > 1:
        stem, ext = os.path.splitext(target)
        target = f"{stem}.shard-{index}-of-{count}{ext}"
    parent = os.path.dirname(target)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return [(files[0], target, count > 1)]


def _out_name(path: str, options: BatchOptions) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem + SUFFIX[format_of(path, options.format)]


def score_path(
    scorer: ScoresRows,
    input: str,
    output: str,
    options: BatchOptions,
    on_chunk: Callable[[FileCounts], None] | None = None,
) -> list[FileCounts]:
    """Score a file or a folder of files (this shard's part); one FileCounts per file."""
    return [
        score_file(scorer, src, dst, options, on_chunk, chunk_shard=by_chunk)
        for src, dst, by_chunk in outputs_for(input, output, options)
    ]


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, BatchOptions]:
    parser = argparse.ArgumentParser(prog="python -m deployer.serving.batch_runner")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--format", choices=("csv", "jsonl", "parquet"))
    parser.add_argument("--keep", default="")
    parser.add_argument("--label")
    parser.add_argument("--columns", default="")
    parser.add_argument("--rows-per-batch", type=int, default=1000)
    parser.add_argument("--shard-index", type=int, default=0)
    parser.add_argument("--shard-count", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if args.rows_per_batch < 1 or args.shard_count < 1 or args.workers < 1:
        parser.error("--rows-per-batch, --shard-count and --workers must be at least 1")
    options = BatchOptions(
        args.format,
        _names(args.keep),
        args.label,
        _names(args.columns),
        args.rows_per_batch,
        args.shard_index,
        args.shard_count,
        workers=args.workers,
    )
    return args, options


def _emit(stream: Any, payload: dict[str, Any]) -> None:
    stream.write(orjson.dumps(payload).decode() + "\n")
    stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args, options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        plan = outputs_for(args.input, args.output, options)
    except InputError as exc:
        _emit(sys.stderr, {"error": str(exc)})
        return 2
    try:
        scorer = load()
    except Exception as exc:
        _emit(sys.stderr, {"error": f"model failed to load: {exc}"})
        return 3

    def progress(counts: FileCounts) -> None:
        if args.progress:
            _emit(
                sys.stdout,
                {
                    "event": "progress",
                    "file": counts.input,
                    "rows": counts.rows,
                    "scored": counts.scored,
                    "failed": counts.failed,
                },
            )

    failed = 0
    for src, dst, by_chunk in plan:
        try:
            counts = score_file(scorer, src, dst, options, progress, chunk_shard=by_chunk)
        except MissingPyarrow as exc:
            _emit(sys.stderr, {"error": str(exc)})
            return 3
        except InputError as exc:
            _emit(sys.stderr, {"error": str(exc)})
            return 2
        for failure in counts.failures:
            _emit(sys.stderr, failure)
        failed += counts.failed
        _emit(sys.stdout, {"event": "file", **counts.to_dict(), "failures": len(counts.failures)})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
