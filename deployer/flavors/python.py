"""A custom predictor: ``module:Class`` with ``load(path)`` and ``predict(inputs, parameters)``.

The class is instantiated with no arguments; ``load`` receives ``model.path`` (a file,
a folder, or None). ``predict`` receives a 2-D numpy array (rows x features) and the
request's parameters, and returns anything numpy can turn into an array. Optional
class attributes: ``signature = {"width": 4, "datatype": "FP64", "outputs": ["predict"]}``
and ``batchable = True`` when rows are independent (allows micro-batching).

Named tensors instead of rows: declare ``"inputs": [{"name": "x", "datatype": "FP32",
"shape": [-1, 3]}, ...]`` (and optionally ``"outputs"`` as such objects) in the class's
``signature`` or deployer.yaml's ``model.signature``; ``predict`` then receives
``{name: array}`` and returns one array or ``{output name: array}``.

In the image, ``model.code`` (default: the project folder) is importable from
/opt/deployer/code; folders go in without .git, .env*, .venv, .deployer, byte code and
tool caches, nor what the project's .dockerignore lists (deployer/image/ignore.py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deployer.flavors.base import (
    LoadedModel,
    Signature,
    TensorSpec,
    specs_from_config,
    tensor_signature,
)

name = "python"
suffixes: tuple[str, ...] = ()
extra = ""


def import_predictor(spec: str, code_paths: list[str]) -> type:
    """Import ``module:Class``, looking in ``code_paths`` first."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"predictor {spec!r} is not of the form 'module:Class'")
    for path in reversed(code_paths):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    top = module_name.split(".")[0]
    cached = sys.modules.get(top)
    if cached is not None and _ours(top, code_paths) and not _inside(cached, code_paths):
        # another project's module of that name, loaded earlier in this process (a release
        # script loading two projects): import this project's own
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no class {class_name!r}") from None


def _ours(top: str, code_paths: list[str]) -> bool:
    """Whether a code path holds module ``top`` (``top.py`` or a ``top/`` package)."""
    return any((Path(p) / f"{top}.py").is_file() or (Path(p) / top).is_dir() for p in code_paths)


def _inside(module: Any, code_paths: list[str]) -> bool:
    """Whether ``module`` was loaded from one of ``code_paths`` (a namespace package or a
    built-in, with no file, counts as inside: it is left alone)."""
    file = getattr(module, "__file__", None)
    if file is None:
        return True
    where = Path(file).resolve()
    return any(where.is_relative_to(Path(p).resolve()) for p in code_paths)


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Instantiate the predictor, call its ``load``, and build the signature."""
    predictor_cls = import_predictor(
        str(options.get("predictor")), list(options.get("code_paths", []))
    )
    predictor = predictor_cls()
    if hasattr(predictor, "load"):
        predictor.load(path)
    declared: Mapping[str, Any] = getattr(predictor_cls, "signature", None) or {}
    inputs = options.get("inputs") or declared.get("inputs")
    if inputs:
        signature = _tensor_signature(inputs, options.get("outputs") or declared.get("outputs"))

        def predict_tensors(tensors: Any, method: str, parameters: Mapping[str, Any]) -> Any:
            return predictor.predict(tensors, dict(parameters))

        return LoadedModel(
            flavor=name,
            signature=signature,
            predict_fn=predict_tensors,
            batchable=bool(getattr(predictor_cls, "batchable", False)),
        )
    outputs = tuple(options.get("outputs") or declared.get("outputs") or ("predict",))
    signature = Signature(
        width=options.get("width") or declared.get("width"),
        datatype=options.get("datatype") or declared.get("datatype") or "FP64",
        outputs=tuple(
            TensorSpec(o, declared.get("output_datatype", "FP64"), (-1,)) for o in outputs
        ),
    )

    def predict(rows: np.ndarray, method: str, parameters: Mapping[str, Any]) -> Any:
        if method != signature.methods[0]:
            parameters = {**parameters, "method": method}
        return predictor.predict(rows, dict(parameters))

    return LoadedModel(
        flavor=name,
        signature=signature,
        predict_fn=predict,
        batchable=bool(getattr(predictor_cls, "batchable", False)),
    )


def _tensor_signature(inputs: Any, outputs: Any) -> Signature:
    """Named tensor inputs; outputs as names (FP64, any shape) or {name, datatype, shape}."""
    entries = list(outputs or ["predict"])
    output_specs = tuple(
        TensorSpec(str(o), "FP64", (-1,)) if isinstance(o, str) else None for o in entries
    )
    if any(spec is None for spec in output_specs):
        output_specs = specs_from_config(entries, "signature.outputs")
    return tensor_signature(
        specs_from_config(inputs, "signature.inputs"),
        tuple(spec for spec in output_specs if spec is not None),
    )
