"""PyTorch models on the CPU: TorchScript (``.pt``, ``torch.jit.save``) and torch.export
programs (``.pt2``, ``torch.export.save``).

Inputs are named tensors, the first dimension the batch. A ``.pt2`` program carries its
input names, shapes (dynamic dimensions become -1) and dtypes, and its outputs; export
with a dynamic batch dimension (``dynamic_shapes``), or every request must carry exactly
the example's batch size (and requests are not micro-batched). A
TorchScript file carries only the argument names of ``forward``: declare the inputs in
deployer.yaml (``model.signature.inputs``: name, datatype, shape), and optionally
``model.signature.outputs``. The model's outputs become named outputs: a dict's keys, a
tuple's ``output-0``, ``output-1``... (or the declared names), a tensor's single name.
Predictions run under ``torch.inference_mode`` with ``torch.set_num_threads(threads)``.
Loading a TorchScript file or a ``.pt2`` runs no pickled Python code, but only load
models you trust.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import (
    LoadedModel,
    Signature,
    TensorSpec,
    specs_from_config,
    tensor_signature,
)
from deployer.flavors.base import require as _require

name = "pytorch"
suffixes = (".pt", ".pt2")
extra = "torch"

_TORCH_TO_OIP = {
    "torch.float32": "FP32",
    "torch.float64": "FP64",
    "torch.float16": "FP16",
    "torch.int64": "INT64",
    "torch.int32": "INT32",
    "torch.int16": "INT16",
    "torch.int8": "INT8",
    "torch.uint8": "UINT8",
    "torch.bool": "BOOL",
}


def _signature_hint(arguments: list[str]) -> str:
    """What to add to deployer.yaml, one line per argument of forward."""
    lines = "".join(
        f"\n      - {{name: {a}, datatype: FP32, shape: [-1, 4]}}" for a in arguments or ["x"]
    )
    return (
        "declare the inputs in deployer.yaml (each datatype and shape; -1 is any size, the "
        f"first dimension the batch), e.g.\nmodel:\n  signature:\n    inputs:{lines}\n"
        "or save an example batch with numpy.savez('example.npz', <argument>=array, ...) and "
        "set model.signature.example: example.npz"
    )


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Load a ``.pt2`` program or a TorchScript file and derive (or take) its signature."""
    if path is None:
        raise ValueError("the pytorch flavour needs model.path (a .pt or .pt2 file)")
    torch = _require("torch", extra, name)
    torch.set_num_threads(int(options.get("threads") or 1))
    if path.lower().endswith(".pt2"):
        module, signature = _load_exported(torch, path, options)
    else:
        module, signature = _load_torchscript(torch, path, options)
    names = [spec.name for spec in signature.inputs]
    output_names = [spec.name for spec in signature.outputs]

    def predict(tensors: Mapping[str, np.ndarray], method: str, parameters: Any) -> Any:
        args = [torch.from_numpy(np.ascontiguousarray(tensors[n])) for n in names]
        with torch.inference_mode():
            result = module(*args)
        return _to_numpy(result, output_names)

    # A program exported with a fixed batch size takes only that size: no micro-batching.
    batchable = all(spec.shape[0] == -1 for spec in signature.inputs)
    return LoadedModel(flavor=name, signature=signature, predict_fn=predict, batchable=batchable)


def _load_exported(torch: Any, path: str, options: Mapping[str, Any]) -> tuple[Any, Signature]:
    program = torch.export.load(path)
    graph_signature = program.graph_signature
    user_inputs = list(graph_signature.user_inputs)
    values: dict[str, Any] = {}
    output_values: list[Any] = []
    for node in program.graph.nodes:
        if node.op == "placeholder":
            values[node.name] = node.meta.get("val")
        elif node.op == "output":
            output_values = [getattr(a, "meta", {}).get("val") for a in node.args[0]]
    inputs = tuple(_spec(str(n), values.get(n), path) for n in user_inputs)
    declared = options.get("inputs")
    if declared:
        inputs = _declared_inputs(declared, [s.name for s in inputs], path)
    names = _output_names(program, len(graph_signature.user_outputs))
    outputs = tuple(
        _spec(n, output_values[i] if i < len(output_values) else None, path, output=True)
        for i, n in enumerate(names)
    )
    declared_outputs = options.get("outputs")
    if declared_outputs:
        outputs = _declared_outputs(declared_outputs, outputs)
    return program.module(), tensor_signature(inputs, outputs)


def _output_names(program: Any, count: int) -> list[str]:
    """A dict output's keys, else ``output-0``...: what the module returns, in order."""
    spec = getattr(getattr(program, "call_spec", None), "out_spec", None)
    context = getattr(spec, "context", None)
    if isinstance(context, list) and len(context) == count and all(
        isinstance(k, str) for k in context
    ):
        return list(context)
    return ["output-0"] if count == 1 else [f"output-{i}" for i in range(count)]


def _spec(tensor_name: str, value: Any, path: str, output: bool = False) -> TensorSpec:
    """A TensorSpec from a traced value (a FakeTensor: symbolic sizes become -1)."""
    if value is None or not hasattr(value, "shape") or not hasattr(value, "dtype"):
        kind = "output" if output else "input"
        raise ValueError(
            f"{os.path.basename(path)}: {kind} {tensor_name!r} is not a tensor; "
            "deployer serves tensor inputs and outputs"
        )
    datatype = _TORCH_TO_OIP.get(str(value.dtype))
    if datatype is None:
        raise ValueError(
            f"{os.path.basename(path)}: tensor {tensor_name!r} has dtype {value.dtype}; "
            f"deployer serves {', '.join(sorted(set(_TORCH_TO_OIP.values())))}"
        )
    dims = tuple(int(d) if isinstance(d, int) else -1 for d in value.shape)
    if dims and output:
        dims = (-1, *dims[1:])  # the batch follows the inputs'
    return TensorSpec(tensor_name, datatype, dims or (-1,))


def _load_torchscript(torch: Any, path: str, options: Mapping[str, Any]) -> tuple[Any, Signature]:
    try:
        module = torch.jit.load(path, map_location="cpu")
    except RuntimeError as exc:
        raise ValueError(
            f"{path} is not a TorchScript file ({str(exc).splitlines()[0]}); save the model "
            "with torch.jit.save(torch.jit.script(model) or torch.jit.trace(model, example)), "
            "or as a .pt2 with torch.export.save (a torch.save pickle cannot be served)"
        ) from None
    module.eval()
    arguments = [a.name for a in module.forward.schema.arguments][1:]  # without self
    declared = options.get("inputs")
    if not declared:
        raise ValueError(
            f"{path} is TorchScript, which does not record its input shapes and dtypes "
            f"(forward takes {', '.join(arguments) or 'no arguments'}); "
            + _signature_hint(arguments)
        )
    inputs = _declared_inputs(declared, arguments, path)
    declared_outputs = options.get("outputs")
    if declared_outputs:
        outputs = _declared_outputs(declared_outputs, ())
    else:
        outputs = (TensorSpec("output-0", "FP32", (-1,)),)
    return module, tensor_signature(inputs, outputs)


def _declared_inputs(declared: Any, arguments: list[str], path: str) -> tuple[TensorSpec, ...]:
    """deployer.yaml's inputs, in forward's argument order (names must be forward's)."""
    specs = specs_from_config(declared, "model.signature.inputs")
    by_name = {spec.name: spec for spec in specs}
    if sorted(by_name) != sorted(arguments):
        raise ValueError(
            f"model.signature.inputs names {', '.join(by_name) or 'nothing'}, but forward() "
            f"of {path} takes {', '.join(arguments) or 'no arguments'}; name each argument once"
        )
    return tuple(by_name[a] for a in arguments)


def _declared_outputs(declared: Any, derived: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
    """Output names (keeping derived datatypes and shapes) or full {name, datatype, shape}."""
    entries = list(declared)
    if all(isinstance(e, str) for e in entries):
        if derived and len(entries) != len(derived):
            raise ValueError(
                f"model.signature.outputs names {len(entries)} outputs; the model has "
                f"{len(derived)}"
            )
        return tuple(
            TensorSpec(e, derived[i].datatype, derived[i].shape)
            if derived
            else TensorSpec(e, "FP32", (-1,))
            for i, e in enumerate(entries)
        )
    return specs_from_config(entries, "model.signature.outputs")


def _to_numpy(result: Any, names: list[str]) -> Any:
    """A tensor (the first output), a dict by key, or a tuple/list by position as names."""
    if isinstance(result, Mapping):
        return {str(k): _array(v) for k, v in result.items()}
    if isinstance(result, (tuple, list)):
        if len(result) > len(names):
            names = [*names, *(f"output-{i}" for i in range(len(names), len(result)))]
        return {names[i]: _array(v) for i, v in enumerate(result)}
    return _array(result)


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)
