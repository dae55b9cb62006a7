"""One captured request as the JSON line the image writes (the format is in
deployer.providers.monitoring's docstring): rows named by feature, predictions, and the
redaction (fields dropped, or hashed to ``"sha256:<hex>"`` of the value's JSON text)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson

from deployer.providers.monitoring import CaptureSpec, format_time

Columns = Callable[[int], Sequence[str]]


def hashed(value: Any) -> str:
    """``"sha256:<hex>"`` of ``value``'s compact JSON text (``json.dumps`` with
    ``separators=(",", ":")``, keys sorted), so a reader can hash a known value to match."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=_plain)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def named_rows(rows: Any, columns: Columns) -> list[dict[str, Any]]:
    """Rows as ``{feature: value}``: a 2-D array's columns named by ``columns(width)``;
    named tensors as ``{input name: that row's value}``."""
    if isinstance(rows, Mapping):
        lists = {str(name): np.asarray(value).tolist() for name, value in rows.items()}
        count = len(next(iter(lists.values()))) if lists else 0
        return [{name: values[i] for name, values in lists.items()} for i in range(count)]
    array = np.asarray(rows)
    names = list(columns(array.shape[1] if array.ndim == 2 else 1))
    return [dict(zip(names, row, strict=False)) for row in array.reshape(len(array), -1).tolist()]


def prediction_list(result: Any) -> list[Any]:
    """The model's answer as one entry per row (named outputs: ``{output: value}``)."""
    if isinstance(result, Mapping):
        lists = {str(name): np.asarray(value).tolist() for name, value in result.items()}
        count = len(next(iter(lists.values()))) if lists else 0
        return [{name: values[i] for name, values in lists.items()} for i in range(count)]
    value = np.asarray(result).tolist() if not isinstance(result, list) else result
    return value if isinstance(value, list) else [value]


def redact(rows: list[dict[str, Any]], drop: Sequence[str], hash_: Sequence[str]) -> None:
    """Drop and hash fields of every row, in place."""
    for row in rows:
        for name in drop:
            row.pop(name, None)
        for name in hash_:
            if name in row:
                row[name] = hashed(row[name])


def build_line(
    spec: CaptureSpec,
    version: str | None,
    request_id: str,
    when: float,
    rows: Any,
    result: Any,
    columns: Columns,
) -> str:
    """The JSON line (no newline) for one captured request."""
    record: dict[str, Any] = {
        "request_id": request_id,
        "time": format_time(datetime.fromtimestamp(when, tz=timezone.utc)),
    }
    if version is not None:
        record["version"] = version
    if spec.inputs:
        named = named_rows(rows, columns)
        if spec.drop or spec.hash:
            redact(named, spec.drop, spec.hash)
        record["rows"] = named
    if spec.outputs:
        record["predictions"] = prediction_list(result)
    return orjson.dumps(record, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _plain(value: Any) -> Any:
    """What json cannot write by itself: numpy scalars, bytes, anything else as text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
