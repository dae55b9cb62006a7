"""Named tensor inputs and outputs: check decoded arrays against the model's signature,
and turn what the model returns into named outputs.

Every input's first dimension is the batch and must agree across inputs; every
dimension must match the signature where it gives a size (-1 is variable; a model that
takes one fixed batch size declares it). BYTES
inputs reach the model as an object array of ``str`` (UTF-8), or ``bytes`` for an
element that is not UTF-8 text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import OIP_TO_NUMPY, Signature, TensorSpec
from deployer.serving.codecs import narrow
from deployer.serving.errors import BadRequest

Tensors = dict[str, np.ndarray]


def expected(spec: TensorSpec) -> str:
    """``x (FP32, shape [-1, 3])``: what an input must be, for error messages."""
    return f"{spec.name} ({spec.datatype}, shape {list(spec.shape)})"


def check_inputs(arrays: Mapping[str, Any], signature: Signature) -> Tensors:
    """Every input by name, of its datatype and shape, with one batch size; else 400."""
    specs = signature.inputs
    wanted = [spec.name for spec in specs]
    unknown = [name for name in arrays if name not in wanted]
    missing = [name for name in wanted if name not in arrays]
    if unknown or missing:
        problems = []
        if missing:
            problems.append(f"missing input {', '.join(map(repr, missing))}")
        if unknown:
            problems.append(f"unknown input {', '.join(map(repr, unknown))}")
        takes = ", ".join(expected(spec) for spec in specs)
        raise BadRequest(f"{'; '.join(problems)}; this model takes {takes}")
    checked = {spec.name: check_input(arrays[spec.name], spec) for spec in specs}
    sizes = {name: len(array) for name, array in checked.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{name}: {size}" for name, size in sizes.items())
        raise BadRequest(f"inputs have different batch sizes ({shown}); send one per row")
    return checked


def check_input(value: Any, spec: TensorSpec) -> np.ndarray:
    """One input as an array of ``spec``'s datatype and shape; 400 naming it otherwise."""
    array = _as_array(value, spec)
    shape = spec.shape
    if array.ndim != len(shape) or any(
        want not in (-1, got) for want, got in zip(shape, array.shape, strict=True)
    ):
        raise BadRequest(
            f"input {spec.name!r} has shape {list(array.shape)}; expected {list(shape)} "
            "(first dimension the batch, -1 any size)"
        )
    if array.shape[0] == 0:
        raise BadRequest(f"input {spec.name!r} is an empty batch: send at least one row")
    return _cast(array, spec)


def _as_array(value: Any, spec: TensorSpec) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        array = np.asarray(value, dtype=object if spec.datatype == "BYTES" else None)
    except (ValueError, TypeError):
        raise BadRequest(
            f"input {spec.name!r} is not a regular array (rows of different shapes); "
            f"expected {expected(spec)}"
        ) from None
    if spec.datatype == "BYTES" and array.ndim > 0 and array.size:
        first = array.ravel()[0]
        if isinstance(first, (list, tuple)):  # nested lists numpy kept as objects
            raise BadRequest(
                f"input {spec.name!r} is not a regular array of strings; expected {expected(spec)}"
            )
    return array


def _cast(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    target = np.dtype(OIP_TO_NUMPY[spec.datatype])
    if spec.datatype == "BYTES":
        return _texts(array, spec)
    if array.dtype == target:
        return array
    if array.dtype.kind in "USO":
        if array.dtype.kind == "O" and all(
            isinstance(v, (int, float, bool, np.number)) and not isinstance(v, str)
            for v in array.ravel()
        ):
            array = np.asarray(array.tolist())
        else:
            raise BadRequest(
                f"input {spec.name!r} must be {spec.datatype} numbers, got text or other "
                f"values; expected {expected(spec)}"
            )
    if array.dtype.kind == "b" and target.kind != "b":
        raise BadRequest(f"input {spec.name!r} must be {spec.datatype} numbers, got booleans")
    if target.kind in "iu" and array.dtype.kind == "f":
        raise BadRequest(f"input {spec.name!r} must be {spec.datatype} integers, got floats")
    if target.kind == "b" and array.dtype.kind != "b":
        raise BadRequest(f"input {spec.name!r} must be BOOL (true/false), got {array.dtype}")
    return narrow(array, target, spec.name, spec.datatype)


def _texts(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A BYTES input as an object array of str (bytes kept where they are not UTF-8)."""
    out = np.empty(array.shape, dtype=object)
    for index, value in np.ndenumerate(array):
        if isinstance(value, Mapping) and set(value) == {"b64"}:
            value = _b64(value["b64"], spec)
        if isinstance(value, bytes):
            with contextlib.suppress(UnicodeDecodeError):
                value = value.decode("utf-8")
        elif not isinstance(value, str):
            raise BadRequest(
                f"input {spec.name!r} must be strings (BYTES), got {type(value).__name__} "
                f"{value!r} at element {index}"
            )
        out[index] = value
    return out


def _b64(text: Any, spec: TensorSpec) -> bytes:
    """Vertex's ``{"b64": "..."}`` binary value."""
    import base64
    import binascii

    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"input {spec.name!r}: 'b64' value is not base64") from None


def from_instances(instances: Any, signature: Signature) -> Tensors:
    """Vertex/SageMaker ``instances``: one object ``{name: value}`` per row, or, for a
    model with one input, the row's bare value (a number, string or nested list)."""
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list, one item per row")
    specs = signature.inputs
    names = [spec.name for spec in specs]
    if len(specs) == 1 and all(_bare(item, names[0]) for item in instances):
        return check_inputs({names[0]: instances}, signature)
    if not all(isinstance(item, dict) for item in instances):
        raise BadRequest(
            f"each instance must be an object with {', '.join(map(repr, names))}"
            + ("" if len(specs) > 1 else " (or the bare value of the one input)")
        )
    columns: dict[str, list[Any]] = {}
    for row, item in enumerate(instances):
        if set(item) != set(names):
            missing = [n for n in names if n not in item]
            unknown = [n for n in item if n not in names]
            parts = [f"missing {', '.join(map(repr, missing))}"] if missing else []
            parts += [f"unknown {', '.join(map(repr, unknown))}"] if unknown else []
            takes = ", ".join(expected(spec) for spec in specs)
            raise BadRequest(f"instance {row}: {'; '.join(parts)}; this model takes {takes}")
        for name in names:
            columns.setdefault(name, []).append(item[name])
    return check_inputs(columns, signature)


def _bare(item: Any, name: str) -> bool:
    """A one-input model's bare value: not an object, or Vertex's ``{"b64": ...}``
    (unless the input is itself named b64)."""
    return not isinstance(item, dict) or (set(item) == {"b64"} and name != "b64")


def from_columns(inputs: Any, signature: Signature) -> Tensors:
    """``{"inputs": {name: batch}}`` (columnar), or ``{"inputs": batch}`` for one input."""
    if isinstance(inputs, dict):
        return check_inputs(inputs, signature)
    if len(signature.inputs) == 1:
        return check_inputs({signature.inputs[0].name: inputs}, signature)
    names = ", ".join(repr(spec.name) for spec in signature.inputs)
    raise BadRequest(f"'inputs' must be an object with {names}, each a batch")


def named_outputs(result: Any, signature: Signature) -> Tensors:
    """What the model returned as ``{output name: array}`` (one array: the first output)."""
    if isinstance(result, Mapping):
        return {str(name): np.asarray(value) for name, value in result.items()}
    return {signature.outputs[0].name: np.asarray(result)}


def select(outputs: Tensors, name: str | None) -> Tensors:
    """Only output ``name`` (400 naming the outputs there are), or all when None."""
    if name is None:
        return outputs
    if name not in outputs:
        raise BadRequest(f"unknown output {name!r}; this model has {', '.join(outputs)}")
    return {name: outputs[name]}


def per_row(outputs: Tensors) -> list[Any]:
    """Predictions as a list, one per row: the value for one output, else ``{name: value}``."""
    lists = {name: array.tolist() for name, array in outputs.items()}
    for name, values in lists.items():
        if not isinstance(values, list):
            raise ValueError(f"the model returned output {name!r} without a batch dimension")
    if len(lists) == 1:
        return next(iter(lists.values()))
    rows = len(next(iter(lists.values())))
    return [{name: values[row] for name, values in lists.items()} for row in range(rows)]
