"""ONNX models run with onnxruntime on the CPU.

Each tensor output of the graph is a method a request can ask for; the first is the
default. Non-tensor outputs (for example skl2onnx's ZipMap) are skipped: export
classifiers with ``options={"zipmap": False}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel, Signature, TensorSpec, require

name = "onnx"
suffixes = (".onnx",)
extra = "onnx"

_ONNX_TO_OIP = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


def _dims(shape: list[Any]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else -1 for d in shape)


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Open an inference session and read the signature from the graph."""
    if path is None:
        raise ValueError("the onnx flavour needs model.path")
    ort = require("onnxruntime", extra, name)
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = int(options.get("threads") or 1)
    session_options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, session_options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ValueError(f"the graph has {len(inputs)} inputs ({names}); deployer serves one")
    graph_input = inputs[0]
    if graph_input.type not in _ONNX_TO_OIP:
        raise ValueError(f"input {graph_input.name} has type {graph_input.type}, not a tensor")
    in_shape = _dims(graph_input.shape)
    width = options.get("width") or (
        in_shape[1] if len(in_shape) == 2 and in_shape[1] > 0 else None
    )
    outputs = tuple(
        TensorSpec(o.name, _ONNX_TO_OIP[o.type], _dims(o.shape))
        for o in session.get_outputs()
        if o.type in _ONNX_TO_OIP
    )
    if not outputs:
        raise ValueError("the graph has no tensor outputs (export with zipmap disabled)")
    signature = Signature(
        width=width,
        datatype=options.get("datatype") or _ONNX_TO_OIP[graph_input.type],
        outputs=outputs,
        input_name=graph_input.name,
    )
    input_name = graph_input.name
    input_dtype = np.dtype(signature.numpy_dtype)

    def predict(rows: np.ndarray, method: str, parameters: Mapping[str, Any]) -> Any:
        return session.run([method], {input_name: rows.astype(input_dtype, copy=False)})[0]

    return LoadedModel(flavor=name, signature=signature, predict_fn=predict)
