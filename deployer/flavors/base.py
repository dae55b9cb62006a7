"""What every model flavour provides: a loaded model with a signature and a predict.

Flavours run inside the serving image, so this module imports only numpy and the stdlib.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from deployer.errors import DeployerError, MissingDependencyError

# Open Inference Protocol v2 datatypes and their numpy equivalents.
OIP_TO_NUMPY: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
_NUMPY_KIND_TO_OIP = {"U": "BYTES", "S": "BYTES", "O": "BYTES"}


_NUMPY_TO_OIP = {np.dtype(t): name for name, t in OIP_TO_NUMPY.items() if name != "BYTES"}


def oip_datatype(dtype: np.dtype[Any]) -> str:
    """The OIP v2 datatype name for a numpy dtype (a dict lookup: it runs per response)."""
    if dtype.kind in _NUMPY_KIND_TO_OIP:
        return "BYTES"
    try:
        return _NUMPY_TO_OIP[dtype]
    except KeyError:
        raise ValueError(f"no OIP datatype for numpy dtype {dtype}") from None


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: OIP datatype and shape (-1 marks a variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    """A model's interface: its inputs and its named outputs.

    Tabular (``inputs`` empty): one 2-D input of ``width`` features; the model's predict
    takes a 2-D array, and ``outputs`` are the methods a request can ask for
    (``predict``, ``predict_proba``, or an ONNX output name); the first is the default.

    Tensor (``inputs`` set): named tensors of any rank, the first dimension the batch;
    the model's predict takes ``{name: array}`` and returns one array (the first output)
    or ``{output name: array}``, every output in one call. ``width`` and ``datatype``
    then describe nothing and are ``None`` and ``""``: use :func:`tensor_signature`.
    """

    width: int | None
    datatype: str
    outputs: tuple[TensorSpec, ...]
    input_name: str = "input-0"
    inputs: tuple[TensorSpec, ...] = ()

    @property
    def is_tensor(self) -> bool:
        """Whether the model takes named tensors (a dict of arrays) rather than rows."""
        return bool(self.inputs)

    @property
    def input(self) -> TensorSpec:
        """The tabular model's one input."""
        return TensorSpec(self.input_name, self.datatype, (-1, self.width if self.width else -1))

    @property
    def input_specs(self) -> tuple[TensorSpec, ...]:
        """Every input: the named tensors, or the tabular input."""
        return self.inputs or (self.input,)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(OIP_TO_NUMPY[self.datatype])

    def output(self, method: str) -> TensorSpec:
        for spec in self.outputs:
            if spec.name == method:
                return spec
        raise KeyError(method)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [i.to_dict() for i in self.input_specs],
            "outputs": [o.to_dict() for o in self.outputs],
        }


def tensor_signature(inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]) -> Signature:
    """A signature of named tensor inputs; every datatype is checked to be an OIP name."""
    if not inputs:
        raise ValueError("a tensor signature needs at least one input")
    if not outputs:
        raise ValueError("a tensor signature needs at least one output")
    for spec in (*inputs, *outputs):
        if spec.datatype not in OIP_TO_NUMPY:
            raise ValueError(
                f"tensor {spec.name!r} has datatype {spec.datatype!r}; "
                f"expected one of {', '.join(OIP_TO_NUMPY)}"
            )
        if not spec.shape or any(d < -1 or d == 0 for d in spec.shape):
            raise ValueError(
                f"tensor {spec.name!r} has shape {list(spec.shape)}; expected at least the "
                "batch dimension, each a positive size or -1 (variable)"
            )
    names = [spec.name for spec in inputs]
    if len(set(names)) != len(names):
        raise ValueError(f"input names must be unique, got {', '.join(names)}")
    return Signature(width=None, datatype="", outputs=outputs, inputs=inputs)


def sample_instances(signature: Signature, rows: int = 2) -> list[Any]:
    """A smoke-test body: ``rows`` rows of zeros shaped like the input (tabular rows, or
    one ``{input: value}`` object per row, variable dimensions of size 1)."""
    if not signature.is_tensor:
        zero: Any = "0" if signature.datatype == "BYTES" else 0
        return [[zero] * (signature.width or 1) for _ in range(rows)]
    instance: dict[str, Any] = {}
    for spec in signature.inputs:
        value: Any = {"BYTES": "0", "BOOL": False}.get(spec.datatype, 0)
        for size in reversed(spec.shape[1:]):
            value = [value] * (size if size > 0 else 1)
        instance[spec.name] = value
    return [instance for _ in range(rows)]


def specs_from_example(path: str) -> tuple[TensorSpec, ...]:
    """Named inputs from an example batch saved with ``numpy.savez(path, name=array, ...)``:
    each array's name, datatype and shape (its first dimension, the batch, becomes -1)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{path}: not an example input (.npz from numpy.savez(path, name=array, ...)): {exc}"
        ) from None
    specs = []
    for name, array in arrays.items():
        if array.ndim == 0:
            raise ValueError(f"{path}: example {name!r} has no batch dimension")
        try:
            datatype = oip_datatype(array.dtype)
        except ValueError as exc:
            raise ValueError(f"{path}: example {name!r}: {exc}") from None
        specs.append(TensorSpec(name, datatype, (-1, *array.shape[1:])))
    if not specs:
        raise ValueError(f"{path}: the example holds no arrays")
    return tuple(specs)


def specs_from_config(entries: Any, what: str) -> tuple[TensorSpec, ...]:
    """``[{name, datatype, shape}, ...]`` (deployer.yaml's model.signature.inputs) as specs."""
    if not isinstance(entries, (list, tuple)):
        raise ValueError(f"{what} must be a list of {{name, datatype, shape}}")
    specs: list[TensorSpec] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not {"name", "datatype", "shape"} <= set(entry):
            raise ValueError(f"{what}[{index}] must have name, datatype and shape")
        shape = entry["shape"]
        if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) for d in shape):
            raise ValueError(f"{what}[{index}].shape must be a list of integers (-1: variable)")
        specs.append(TensorSpec(str(entry["name"]), str(entry["datatype"]), tuple(shape)))
    return tuple(specs)


@dataclass
class LoadedModel:
    """A model ready to predict. ``batchable`` says rows are independent (micro-batching ok).

    ``predict`` takes a 2-D array (tabular) or ``{input name: array}`` (tensor signature).
    """

    flavor: str
    signature: Signature
    predict_fn: Any  # Callable[[np.ndarray | dict[str, np.ndarray], str, Mapping[str, Any]], Any]
    batchable: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def predict(self, rows: Any, method: str, parameters: Mapping[str, Any]) -> Any:
        return self.predict_fn(rows, method, parameters)


@dataclass(frozen=True)
class SignatureOverride:
    """Signature fields a user may set in deployer.yaml when a flavour cannot derive them."""

    width: int | None = None
    datatype: str | None = None
    outputs: tuple[str, ...] = ()


class Flavor(Protocol):
    """A flavour module: a name, file suffixes it recognises, and a loader."""

    name: str
    suffixes: tuple[str, ...]
    extra: str  # the pip extra that installs its dependencies

    def load(self, path: str | None, options: Mapping[str, Any]) -> LoadedModel: ...


class RequestError(ValueError):
    """A request the model refuses (e.g. a bad parameter value): the server answers 400
    with this message."""


class ModelLoadError(DeployerError):
    """The model file exists but the flavour could not load it."""

    exit_code = 2


def require(module: str, extra: str, flavor: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the {flavor} flavour needs the '{module}' package, which is not installed ({exc})",
            hint=f"pip install 'deployer[{extra}]'",
        ) from exc
