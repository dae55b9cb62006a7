"""Batch input shaping, the online rules: the feature columns by name (given, else the
model's own feature names, else every column but the label and the keep columns), the
label dropped, rows validated and cast by the serving codecs (``codecs.to_rows``,
``tensors.from_instances``) exactly as a request body's rows are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel, Signature
from deployer.serving.batch_files import Chunk, InputError
from deployer.serving.codecs import to_rows
from deployer.serving.errors import BadRequest
from deployer.serving.tensors import from_instances


@dataclass(frozen=True)
class Layout:
    """Where the features and the keep columns are in a file's rows."""

    features: tuple[int, ...] | None  # None: the whole row (arrays without names)
    keep: tuple[int, ...]
    keep_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    text: bool  # values are CSV text: numbers parsed as the online CSV body is


def model_feature_names(model: LoadedModel) -> tuple[str, ...]:
    """The estimator's own feature names (scikit-learn's ``feature_names_in_``), if any."""
    names = getattr(model.extra.get("model"), "feature_names_in_", None)
    return () if names is None else tuple(str(n) for n in names)


def layout(
    path: str,
    chunk: Chunk,
    signature: Signature,
    columns: Sequence[str],
    keep: Sequence[str],
    label: str | None,
    model_names: Sequence[str] = (),
    text: bool = False,
) -> Layout:
    """The columns to read from this file, or an InputError naming the file and column."""
    names = chunk.names
    if not names:
        if keep or label or columns:
            raise InputError(
                f"{path}: rows are arrays without column names; --keep, --label and "
                "--columns need named columns (a CSV header or JSON objects)"
            )
        return Layout(None, (), (), (), text)
    index = {name: i for i, name in enumerate(names)}
    for what, wanted in (("keep", keep), ("columns", columns), ("label", [label] if label else [])):
        missing = [n for n in wanted if n not in index]
        if missing:
            raise InputError(
                f"{path}: no column {', '.join(map(repr, missing))} (--{what}); "
                f"the columns are {', '.join(names)}"
            )
    if signature.is_tensor:
        chosen = tuple(columns) or tuple(s.name for s in signature.inputs)
    elif columns:
        chosen = tuple(columns)
    elif model_names and all(n in index for n in model_names):
        chosen = tuple(model_names)
    else:
        dropped = {label, *keep}
        chosen = tuple(n for n in names if n not in dropped)
        width = signature.width
        if width is not None and len(chosen) != width:
            raise InputError(
                f"{path}: {len(chosen)} feature column(s) ({', '.join(chosen) or 'none'}) "
                f"besides the label and keep columns; the model takes {width} "
                "(name them with --columns)"
            )
    missing = [n for n in chosen if n not in index]
    if missing:
        raise InputError(
            f"{path}: no feature column {', '.join(map(repr, missing))}; "
            f"the columns are {', '.join(names)}"
        )
    return Layout(
        tuple(index[n] for n in chosen),
        tuple(index[n] for n in keep),
        tuple(keep),
        chosen,
        text,
    )


def features(rows: list[list[Any]], plan: Layout, signature: Signature) -> Any:
    """The model's input for these rows: a cast 2-D array, or named tensors; BadRequest
    (the online message) when a row cannot be one."""
    if plan.features is None:
        picked: list[Any] = rows
    else:
        picked = pick(rows, plan.features)
    if signature.is_tensor:
        names = plan.feature_names
        return from_instances([dict(zip(names, row, strict=False)) for row in picked], signature)
    if plan.text and signature.numpy_dtype.kind != "O":
        try:  # what the online CSV codec does: numbers separated by commas, as float64
            picked = np.asarray(picked, dtype=np.float64)  # type: ignore[assignment]
        except ValueError as exc:
            raise BadRequest(f"CSV rows must be numbers separated by commas: {exc}") from None
    return to_rows(picked, signature)


def chunk_features(chunk: Chunk, plan: Layout, signature: Signature) -> Any:
    """``features`` of the whole chunk: pyarrow's columns parsed at once when it has them
    (a numeric tabular model), else row by row from the values."""
    numeric = not signature.is_tensor and signature.numpy_dtype.kind != "O"
    if chunk.columns is not None and plan.text and numeric and plan.features is not None:
        from deployer.serving.batch_arrow import numbers

        try:
            return to_rows(numbers(chunk, plan.features), signature)
        except ValueError:
            pass  # a value that is not a number: the online CSV path names it
    if chunk.tokens is not None and plan.text and numeric and plan.features is not None:
        from deployer.serving.batch_text import numbers as text_numbers

        try:
            return to_rows(text_numbers(chunk, plan.features), signature)
        except ValueError:
            pass
    return features(chunk.rows, plan, signature)


def kept(rows: list[list[Any]], plan: Layout) -> list[list[Any]]:
    """The keep columns' values, per row."""
    return pick(rows, plan.keep)


def pick(rows: list[list[Any]], idx: Sequence[int]) -> list[Any]:
    """The values at ``idx`` of each row, as lists (itemgetter: the loop in C)."""
    if not idx:
        return [[] for _ in rows]
    if len(idx) == 1:
        (i,) = idx
        return [[row[i]] for row in rows]
    return list(map(list, map(itemgetter(*idx), rows)))
