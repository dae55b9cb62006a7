"""Captured records (``deployer.providers.monitoring.CapturedRecord``) as columns: each
feature's live values, one per captured row, and the predictions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deployer.providers.monitoring import CapturedRecord

POSITIONAL = re.compile(r"f?(\d{1,6})")  # how a row captured without names keys its values


@dataclass
class LiveData:
    """What the target captured: ``values[feature]`` (None where a row lacks it or holds
    it hashed), ``present``: the features at least one row carried unhashed;
    ``predictions``: one per row."""

    records: int = 0
    rows: int = 0
    values: dict[str, list[Any]] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    predictions: list[Any] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None


def collect(
    records: Iterable[CapturedRecord], features: Iterable[str], inputs: Sequence[str] = ()
) -> LiveData:
    """Gather ``features``' values and the predictions from ``records``. A prediction that
    is not one value (a list of scores) counts as missing, a one-element list as its value.
    A row a cloud captured by position (``f0``, ``f1``... or ``0``, ``1``...) takes the
    names of ``inputs``, the model's input columns in order."""
    live = LiveData(values={name: [] for name in features})
    for record in records:
        live.records += 1
        live.first = record.time if live.first is None else min(live.first, record.time)
        live.last = record.time if live.last is None else max(live.last, record.time)
        for captured in record.rows or ():
            row = named(captured, inputs, live.values)
            live.rows += 1
            for name, column in live.values.items():
                value = row.get(name)
                if hashed(value):  # redacted: the value is not known
                    value = None
                elif name in row:
                    live.present.add(name)
                column.append(value)
        live.predictions.extend(scalar(p) for p in record.predictions or ())
    return live


def named(
    row: Mapping[str, Any], inputs: Sequence[str], features: Mapping[str, Any]
) -> Mapping[str, Any]:
    """``row`` with positional keys (``f3``, ``3``) renamed to ``inputs[3]``, when no key
    already names a feature; otherwise ``row`` as it is."""
    if not inputs or any(key in features for key in row):
        return row
    renamed: dict[str, Any] = {}
    for key, value in row.items():
        match = POSITIONAL.fullmatch(key)
        index = int(match.group(1)) if match else -1
        renamed[inputs[index] if 0 <= index < len(inputs) else key] = value
    return renamed


def hashed(value: Any) -> bool:
    """A value the capture redacted by hashing (``sha256:<64 hex>``)."""
    return isinstance(value, str) and len(value) == 71 and value.startswith("sha256:")


def scalar(value: Any) -> Any:
    """One prediction as one value: ``[x]`` is ``x``; a list of several values is None."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return None if isinstance(value, list | dict) else value
