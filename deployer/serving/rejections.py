"""The model's own input validation, answered as 400 naming the value it rejected.

Flavours differ on NaN: XGBoost, LightGBM and sklearn's HistGradientBoosting take it as
"missing", most sklearn estimators refuse it. So the server does not reject NaN itself:
it maps the model's input-validation errors to 400 and names the offending value.
"""

from __future__ import annotations

import re

import numpy as np

from deployer.serving.errors import BadRequest

# sklearn's check_array: "Input X contains NaN.", "Input contains infinity or a value too
# large for dtype('float64')." (also raised when a transformer step overflows).
_INPUT_REJECTED = re.compile(r"^Input( X)? contains (NaN|infinity)", re.IGNORECASE)


def is_input_rejection(exc: BaseException) -> bool:
    """Whether ``exc`` is the model refusing the values it was given."""
    return isinstance(exc, ValueError) and bool(_INPUT_REJECTED.match(str(exc)))


def rejection(exc: BaseException, rows: np.ndarray) -> BadRequest:
    """A 400 quoting the model's first sentence and the value that caused it."""
    reason = str(exc).split("\n", 1)[0].split(". ", 1)[0].rstrip(".")
    return BadRequest(f"the model rejected the input: {reason}; {_culprit(rows)}")


def _culprit(rows: np.ndarray) -> str:
    """The first non-finite value, else the largest in magnitude (it overflowed inside)."""
    if rows.dtype.kind not in "fiu" or rows.size == 0:
        return "check the input values"
    values = rows.astype(np.float64, copy=False)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        kind = "a missing value (NaN)" if np.isnan(values[index]) else "an infinite value"
        return f"{kind} {float(values[index])!r} in {where(index)}"
    index = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(values)), values.shape))
    return f"value {float(values[index])!r} in {where(index)} is too large for the model"


def where(index: tuple[int, ...]) -> str:
    """``row R, feature F`` for a 2-D index, else ``element (i, j, ...)``."""
    if len(index) == 2:
        return f"row {index[0]}, feature {index[1]}"
    return f"element {index}"
