"""TensorFlow / Keras models on the CPU: a Keras 3 ``.keras`` file (``model.save``) and a
TensorFlow SavedModel folder (``saved_model.pb`` + ``variables/``, from
``tf.saved_model.save`` or Keras' ``model.export``).

Inputs are named tensors, the first dimension the batch. A ``.keras`` model's signature is
its ``model.inputs`` / ``model.outputs`` (names, shapes with ``None`` as -1, dtypes); a
SavedModel's is its ``serving_default`` signature. A ``.keras`` file loads with the
backend named by ``model.options.backend`` (``tensorflow``, the default, ``torch`` or
``jax``), and the image carries Keras plus that backend only; a SavedModel needs
TensorFlow only. ``threads`` sets TensorFlow's (or torch's) intra-op threads.

This module is named ``keras_flavor`` so that it never shadows the ``keras`` package.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import (
    LoadedModel,
    Signature,
    TensorSpec,
    oip_datatype,
    tensor_signature,
)
from deployer.flavors.base import require as _require

name = "keras"
suffixes = (".keras",)
extra = "keras"

BACKENDS = ("tensorflow", "torch", "jax")
KERAS = "keras>=3,<4"
# What each backend adds to the image (CPU builds: tensorflow-cpu, torch pinned to the
# host's CPU wheel by deployer/image/wheelhouse.py, jax with its CPU jaxlib).
BACKEND_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow-cpu>=2.16,<3",),
    "torch": ("torch>=2.4,<3",),
    "jax": ("jax>=0.4,<1", "jaxlib>=0.4,<1"),
}
SAVED_MODEL = "saved_model.pb"


def is_saved_model(path: str) -> bool:
    """A folder holding a TensorFlow SavedModel (``saved_model.pb``)."""
    return os.path.isfile(os.path.join(path, SAVED_MODEL))


def backend_of(options: Mapping[str, Any]) -> str:
    """The Keras backend ``model.options.backend`` names (default tensorflow)."""
    backend = str(options.get("backend") or "tensorflow").lower()
    if backend not in BACKENDS:
        raise ValueError(
            f"model.options.backend is {options.get('backend')!r}; expected one of "
            f"{', '.join(BACKENDS)}"
        )
    return backend


def image_needs(path: str, options: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The backend the image installs beside Keras: TensorFlow for a SavedModel, the
    chosen backend for a ``.keras`` file."""
    backend = "tensorflow" if is_saved_model(path) else backend_of(options)
    return name, BACKEND_REQUIREMENTS[backend]


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Load a ``.keras`` file or a SavedModel folder and derive its signature."""
    if path is None:
        raise ValueError(
            "the keras flavour needs model.path (a .keras file or a SavedModel folder)"
        )
    threads = int(options.get("threads") or 1)
    if os.path.isdir(path):
        if not is_saved_model(path):
            raise ValueError(
                f"{path} is a folder without {SAVED_MODEL}; expected a TensorFlow SavedModel "
                "(tf.saved_model.save or model.export) or a .keras file (model.save)"
            )
        return _load_saved_model(path, threads)
    return _load_keras_file(path, backend_of(options), threads)


# -- .keras files ---------------------------------------------------------------------------


def _import_keras(backend: str) -> Any:
    """Keras with ``backend``; Keras reads KERAS_BACKEND once, at its first import."""
    loaded = sys.modules.get("keras")
    if loaded is None:
        os.environ["KERAS_BACKEND"] = backend
    _require(backend, extra, name)
    keras = _require("keras", extra, name)
    current = keras.config.backend()
    if current != backend:
        raise ValueError(
            f"Keras is already running with the {current} backend in this process; the "
            f"model asks for {backend} (model.options.backend): load it in a new process"
        )
    return keras


def _set_threads(backend: str, threads: int) -> None:
    if backend == "tensorflow":
        _tensorflow_threads(_require("tensorflow", extra, name), threads)
    elif backend == "torch":
        _require("torch", extra, name).set_num_threads(threads)


def _tensorflow_threads(tf: Any, threads: int) -> None:
    """Set TensorFlow's thread pools; they are fixed once TensorFlow has run anything."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised in this process: keep what it has
        pass


def _load_keras_file(path: str, backend: str, threads: int) -> LoadedModel:
    keras = _import_keras(backend)
    _set_threads(backend, threads)
    try:
        model = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path} is not a Keras 3 model file ({first}); save the model with "
            "model.save('model.keras'), or export a SavedModel folder with model.export(path)"
        ) from None
    inputs = tuple(_spec(str(t.name), t.shape, t.dtype, path) for t in model.inputs)
    output_names = _keras_output_names(model)
    outputs = tuple(
        _spec(output_names[i], t.shape, t.dtype, path, output=True)
        for i, t in enumerate(model.outputs)
    )
    signature = tensor_signature(inputs, outputs)
    input_names = [spec.name for spec in inputs]
    names = [spec.name for spec in outputs]

    def predict(tensors: Mapping[str, np.ndarray], method: str, parameters: Any) -> Any:
        feed = {n: tensors[n] for n in input_names}
        result = model.predict_on_batch(feed if len(feed) > 1 else feed[input_names[0]])
        return _named(result, names)

    return LoadedModel(
        flavor=name, signature=signature, predict_fn=predict, batchable=_batchable(signature)
    )


def _keras_output_names(model: Any) -> list[str]:
    """The output layers' names (a dict output's keys), else ``output-0``..."""
    count = len(model.outputs)
    names = list(getattr(model, "output_names", None) or [])
    if len(names) == count and len(set(names)) == count:
        return [str(n) for n in names]
    return [f"output-{i}" for i in range(count)]


# -- SavedModel folders ---------------------------------------------------------------------


def _load_saved_model(path: str, threads: int) -> LoadedModel:
    tf = _require("tensorflow", extra, name)
    _tensorflow_threads(tf, threads)
    loaded = tf.saved_model.load(path)
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    function = signatures.get("serving_default")
    if function is None:
        raise ValueError(
            f"{path} has no serving_default signature (it has "
            f"{', '.join(signatures) or 'none'}); save it with tf.saved_model.save(model, path, "
            "signatures=...) or Keras' model.export(path)"
        )
    _, keyword = function.structured_input_signature
    inputs = tuple(
        _spec(str(key), spec.shape, spec.dtype.name, path) for key, spec in sorted(keyword.items())
    )
    structured = function.structured_outputs
    if not isinstance(structured, Mapping):
        structured = {"output-0": structured}
    outputs = tuple(
        _spec(str(key), spec.shape, spec.dtype.name, path, output=True)
        for key, spec in sorted(structured.items())  # a SavedModel keeps no order
    )
    signature = tensor_signature(inputs, outputs)
    dtypes = {spec.name: keyword[spec.name].dtype for spec in inputs}

    def predict(tensors: Mapping[str, np.ndarray], method: str, parameters: Any) -> Any:
        feed = {n: tf.constant(tensors[n], dtype=dtype) for n, dtype in dtypes.items()}
        result = function(**feed)
        return {str(k): np.asarray(v.numpy()) for k, v in result.items()}

    return LoadedModel(
        flavor=name,
        signature=signature,
        predict_fn=predict,
        batchable=_batchable(signature),
        extra={"loaded": loaded},  # keeps the variables the function captures alive
    )


# -- shared ---------------------------------------------------------------------------------


def _spec(tensor_name: str, shape: Any, dtype: Any, path: str, output: bool = False) -> TensorSpec:
    """A TensorSpec from a Keras/TensorFlow shape (None: -1) and dtype name."""
    dtype_name = str(getattr(dtype, "name", dtype))
    kind = "output" if output else "input"
    try:
        datatype = "BYTES" if dtype_name == "string" else oip_datatype(np.dtype(dtype_name))
    except (TypeError, ValueError):
        raise ValueError(
            f"{os.path.basename(path)}: {kind} {tensor_name!r} has dtype {dtype_name}; "
            "deployer serves numeric, boolean and string tensors"
        ) from None
    dims = tuple(-1 if d is None else int(d) for d in (list(shape) if shape is not None else []))
    if not dims:
        raise ValueError(
            f"{os.path.basename(path)}: {kind} {tensor_name!r} is a scalar; deployer serves "
            "tensors whose first dimension is the batch"
        )
    if output:
        dims = (-1, *dims[1:])  # the batch follows the inputs'
    return TensorSpec(tensor_name, datatype, dims)


def _batchable(signature: Signature) -> bool:
    """Requests can be stacked only when every input takes any batch size."""
    return all(spec.shape[0] == -1 for spec in signature.inputs)


def _named(result: Any, names: list[str]) -> Any:
    """A dict by key, a list by position as ``names``, a single array as the first output."""
    if isinstance(result, Mapping):
        return {str(k): np.asarray(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        padded = [*names, *(f"output-{i}" for i in range(len(names), len(result)))]
        return {padded[i]: np.asarray(v) for i, v in enumerate(result)}
    return np.asarray(result)
