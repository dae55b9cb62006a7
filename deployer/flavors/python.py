"""A custom predictor: ``module:Class`` with ``load(path)`` and ``predict(inputs, parameters)``.

The class is instantiated with no arguments; ``load`` receives ``model.path`` (a file,
a folder, or None). ``predict`` receives a 2-D numpy array (rows x features) and the
request's parameters, and returns anything numpy can turn into an array. Optional
class attributes: ``signature = {"width": 4, "datatype": "FP64", "outputs": ["predict"]}``
and ``batchable = True`` when rows are independent (allows micro-batching).

In the image, ``model.code`` (default: the project folder) is importable from
/opt/deployer/code; folders go in without .git, .env*, .venv, .deployer, byte code and
tool caches, nor what the project's .dockerignore lists (deployer/image/ignore.py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel, Signature, TensorSpec

name = "python"
suffixes: tuple[str, ...] = ()
extra = ""


def import_predictor(spec: str, code_paths: list[str]) -> type:
    """Import ``module:Class``, looking in ``code_paths`` first."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"predictor {spec!r} is not of the form 'module:Class'")
    for path in reversed(code_paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no class {class_name!r}") from None


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Instantiate the predictor, call its ``load``, and build the signature."""
    predictor_cls = import_predictor(
        str(options.get("predictor")), list(options.get("code_paths", []))
    )
    predictor = predictor_cls()
    if hasattr(predictor, "load"):
        predictor.load(path)
    declared: Mapping[str, Any] = getattr(predictor_cls, "signature", None) or {}
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
