"""MLflow models: a folder with an ``MLmodel`` file (``mlflow.<flavor>.save_model`` or a
run's artifact), or ``models:/NAME/VERSION`` in a registry (``deployer init`` downloads it).

The ``MLmodel`` YAML is read here, without MLflow. When MLflow recorded a flavour deployer
serves natively (``NATIVE``), that flavour loads the model file inside the folder and the
image carries only its runtime; otherwise MLflow's own ``mlflow.pyfunc.load_model`` serves
it and the image carries ``mlflow-skinny`` plus the model's ``requirements.txt``.
MLflow's recorded signature (column names and types, or one tensor) gives the width and
datatype, and its input example becomes the smoke sample (``LoadedModel.extra["sample"]``).

This module shares its name with the library; it imports it absolutely
(``importlib.import_module("mlflow.pyfunc")``), which never resolves to this file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deployer.errors import DeployerError, UsageError, read_config_text
from deployer.flavors.base import LoadedModel, Signature, TensorSpec, oip_datatype, require
from deployer.yaml_errors import load_yaml

name = "mlflow"
suffixes: tuple[str, ...] = ()  # detected as a folder holding an MLmodel file
extra = "mlflow"
MLMODEL = "MLmodel"
REGISTRY_PREFIX = "models:/"
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
SAMPLE_ROWS = 8  # rows of MLflow's input example kept as the smoke sample


@dataclass(frozen=True)
class Native:
    """How deployer serves an MLflow flavour itself: our flavour, and the MLmodel key
    (under ``flavors.<mlflow flavour>``) that names the model file in the folder."""

    flavor: str
    file_key: str


# MLflow flavour → deployer's own flavour. Checked in this order (an MLmodel lists
# python_function too, which is the fallback).
NATIVE: dict[str, Native] = {
    "sklearn": Native("sklearn", "pickled_model"),
    "xgboost": Native("xgboost", "data"),
    "lightgbm": Native("lightgbm", "data"),
    "catboost": Native("catboost", "data"),
    "onnx": Native("onnx", "data"),
}
# MLflow flavours whose deployer flavour is not there yet: served through pyfunc for now.
NOT_YET: dict[str, str] = {
    "pytorch": "the torch flavour is being added (issue 16); served through mlflow.pyfunc",
    "transformers": "the transformers flavour is not there yet; served through mlflow.pyfunc",
    "keras": "the keras flavour is not there yet; served through mlflow.pyfunc",
    "tensorflow": "the keras/tensorflow flavour is not there yet; served through mlflow.pyfunc",
}
# MLflow column types → OIP datatypes.
COLUMN_TYPES = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
}
_NUMPY = {"BOOL": "bool", "INT32": "int32", "INT64": "int64", "FP32": "float32", "FP64": "float64"}
_NUMERIC = frozenset({"BOOL", "INT32", "INT64", "FP32", "FP64"})
# What the image installs for the pyfunc fallback (the model's own requirements.txt too).
PYFUNC_REQUIREMENTS = ("pandas>=2,<4", "cloudpickle>=2,<4")
MLFLOW_SKINNY = "mlflow-skinny>=2.9,<4"


@dataclass(frozen=True)
class MLModel:
    """What an ``MLmodel`` file says, as far as deployer uses it."""

    folder: Path
    flavors: dict[str, dict[str, Any]]
    inputs: list[dict[str, Any]] | None  # MLflow's signature (decoded JSON), when recorded
    outputs: list[dict[str, Any]] | None
    example: dict[str, Any] | None  # saved_input_example_info

    @property
    def source(self) -> str:
        return str(self.folder / MLMODEL)


@dataclass(frozen=True)
class Backend:
    """How this MLflow model is served: ``flavor`` is deployer's own flavour or "pyfunc"."""

    flavor: str
    file: Path | None
    mlflow_flavor: str
    note: str = ""


# -- detection and reading -------------------------------------------------------------


def is_registry_uri(path: str) -> bool:
    return path.startswith(REGISTRY_PREFIX)


def model_folder(path: str) -> Path | None:
    """The model's folder when ``path`` is an MLflow model folder or its MLmodel file."""
    candidate = Path(path)
    if candidate.name == MLMODEL and candidate.is_file():
        return candidate.parent
    if candidate.is_dir() and (candidate / MLMODEL).is_file():
        return candidate
    return None


def is_mlflow_model(path: str) -> bool:
    return is_registry_uri(path) or model_folder(path) is not None


def _json_field(value: Any, source: str, field: str) -> list[dict[str, Any]] | None:
    if value in (None, ""):
        return None
    try:
        decoded = json.loads(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise ValueError(f"{source}: {field} is not JSON ({exc})") from None
    if not isinstance(decoded, list) or not all(isinstance(d, dict) for d in decoded):
        raise ValueError(f"{source}: {field}: expected a list of column or tensor specs")
    return decoded


def read_mlmodel(path: str) -> MLModel:
    """Read (bounded, see deployer.errors) and check the MLmodel file of ``path``."""
    folder = model_folder(path)
    if folder is None:
        raise ValueError(f"{path} is not an MLflow model (expected a folder with an {MLMODEL})")
    source = str(folder / MLMODEL)
    data, _ = load_yaml(read_config_text(folder / MLMODEL), source)
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise ValueError(f"{source}: expected a mapping with a 'flavors' mapping")
    flavors = {str(k): v if isinstance(v, dict) else {} for k, v in data["flavors"].items()}
    signature = data.get("signature") or {}
    if not isinstance(signature, dict):
        raise ValueError(f"{source}: signature: expected a mapping")
    example = data.get("saved_input_example_info")
    return MLModel(
        folder=folder,
        flavors=flavors,
        inputs=_json_field(signature.get("inputs"), source, "signature.inputs"),
        outputs=_json_field(signature.get("outputs"), source, "signature.outputs"),
        example=example if isinstance(example, dict) else None,
    )


def _inside(model: MLModel, relative: Any, field: str) -> Path:
    """A file the MLmodel names, which must stay inside the model's folder."""
    if not isinstance(relative, str) or not relative:
        raise ValueError(f"{model.source}: {field}: expected a file name")
    file = (model.folder / relative).resolve()
    if not file.is_relative_to(model.folder.resolve()):
        raise ValueError(f"{model.source}: {field}: {relative!r} leaves the model folder")
    return file


def _servable_natively(mlflow_flavor: str, conf: dict[str, Any]) -> str | None:
    """Why a recorded native flavour cannot be served by ours (None: it can)."""
    if mlflow_flavor == "sklearn":
        fmt = conf.get("serialization_format", "cloudpickle")
        if fmt not in ("pickle", "cloudpickle"):
            return f"sklearn saved as {fmt} (deployer's sklearn flavour reads pickles)"
    return None


def resolve(model: MLModel) -> Backend:
    """The native flavour that serves ``model`` (see NATIVE), else MLflow's pyfunc."""
    notes = []
    for mlflow_flavor, native in NATIVE.items():
        conf = model.flavors.get(mlflow_flavor)
        if conf is None:
            continue
        problem = _servable_natively(mlflow_flavor, conf)
        if problem:
            notes.append(problem)
            continue
        field = f"flavors.{mlflow_flavor}.{native.file_key}"
        file = _inside(model, conf.get(native.file_key), field)
        flavor = native.flavor
        if mlflow_flavor in ("lightgbm", "xgboost") and file.suffix == ".pkl":
            flavor = "sklearn"  # MLflow pickles the sklearn-API estimators (LGBMClassifier...)
        return Backend(flavor, file, mlflow_flavor)
    notes += [why for flavor, why in NOT_YET.items() if flavor in model.flavors]
    if "python_function" not in model.flavors:
        recorded = ", ".join(model.flavors) or "none"
        raise ValueError(
            f"{model.source}: MLflow flavours {recorded}: none is served by deployer "
            f"({', '.join(NATIVE)}) and there is no python_function flavour to fall back to"
        )
    return Backend("pyfunc", None, "python_function", "; ".join(notes))


# -- the image ------------------------------------------------------------------------


def _model_requirements(model: MLModel) -> tuple[str, ...]:
    """The model's requirements.txt, with mlflow swapped for mlflow-skinny at its version."""
    file = model.folder / "requirements.txt"
    if not file.is_file():
        return (MLFLOW_SKINNY,)
    found: list[str] = []
    skinny = MLFLOW_SKINNY
    for line in read_config_text(file).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):  # no pip options (index URLs, -r) from a model
            continue
        match = re.fullmatch(r"mlflow(?:-skinny)?\s*(\S*)", line)
        if match:
            skinny = f"mlflow-skinny{match.group(1)}" if match.group(1) else MLFLOW_SKINNY
            continue
        found.append(line)
    return (skinny, *PYFUNC_REQUIREMENTS, *found)


def image_needs(path: str, options: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(flavour whose runtime the image installs, the model's own extra requirements);
    ``options`` (model.options) change nothing for an MLflow model."""
    model = read_mlmodel(path)
    backend = resolve(model)
    if backend.flavor == "pyfunc":
        return name, _model_requirements(model)
    sklearn = model.flavors.get("sklearn", {})
    cloudpickled = backend.mlflow_flavor == "sklearn" and (
        sklearn.get("serialization_format", "cloudpickle") == "cloudpickle"
    )
    return backend.flavor, ("cloudpickle>=2,<4",) if cloudpickled else ()


# -- signature and sample -------------------------------------------------------------


def _column_datatype(columns: list[dict[str, Any]], source: str) -> str:
    types = []
    for column in columns:
        kind = column.get("type")
        if kind not in COLUMN_TYPES:
            raise ValueError(
                f"{source}: signature column {column.get('name', '?')!r} has type {kind!r}; "
                f"deployer serves {', '.join(COLUMN_TYPES)}"
            )
        types.append(COLUMN_TYPES[str(kind)])
    if len(set(types)) == 1:
        return types[0]
    return "FP64" if set(types) <= _NUMERIC else "BYTES"


def _tensor(spec: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
    tensor = spec.get("tensor-spec") or {}
    dtype = oip_datatype(np.dtype(str(tensor.get("dtype", "float64"))))
    shape = tuple(int(d) for d in tensor.get("shape") or (-1,))
    return dtype, shape


def input_spec(model: MLModel) -> tuple[int | None, str | None, list[str] | None]:
    """(width, datatype, column names) from MLflow's input signature (Nones when absent)."""
    inputs = model.inputs
    if not inputs:
        return None, None, None
    if all(spec.get("type") == "tensor" for spec in inputs):
        if len(inputs) != 1:
            raise ValueError(
                f"{model.source}: the signature has {len(inputs)} tensor inputs; "
                "deployer serves one input of rows"
            )
        datatype, shape = _tensor(inputs[0])
        width = shape[1] if len(shape) == 2 and shape[1] > 0 else None
        if len(shape) > 2:
            raise ValueError(f"{model.source}: input tensor of shape {list(shape)}; expected rows")
        return width, datatype, None
    names = [str(spec.get("name", index)) for index, spec in enumerate(inputs)]
    return len(inputs), _column_datatype(inputs, model.source), names


def output_spec(model: MLModel) -> TensorSpec | None:
    """``predict`` from MLflow's output signature, when recorded."""
    outputs = model.outputs
    if not outputs:
        return None
    if all(spec.get("type") == "tensor" for spec in outputs) and len(outputs) == 1:
        datatype, shape = _tensor(outputs[0])
        return TensorSpec("predict", datatype, (-1, *shape[1:]))
    if any(spec.get("type") == "tensor" for spec in outputs):
        return None
    datatype = _column_datatype(outputs, model.source)
    return TensorSpec("predict", datatype, (-1,) if len(outputs) == 1 else (-1, len(outputs)))


def input_example(
    model: MLModel, columns: list[str] | None, width: int | None
) -> list[list[Any]] | None:
    """MLflow's saved input example as rows of ``width`` (at most SAMPLE_ROWS), or None
    when there is none or deployer cannot read it as rows (then the smoke sample is zeros)."""
    try:
        rows = _example_rows(model, columns)
    except (DeployerError, ValueError, TypeError, KeyError, AttributeError):
        return None  # too large (1 MB), not JSON, or not rows: an example is optional
    if not rows or (width and any(len(row) != width for row in rows)):
        return None
    return rows[:SAMPLE_ROWS]


def _example_rows(model: MLModel, columns: list[str] | None) -> list[list[Any]] | None:
    info = model.example or {}
    artifact = info.get("artifact_path")
    if not artifact:
        return None
    file = _inside(model, artifact, "saved_input_example_info.artifact_path")
    if not file.is_file():
        return None
    document = json.loads(read_config_text(file))
    rows: Any = None
    if isinstance(document, dict) and "data" in document:  # dataframe, orient "split"
        order = document.get("columns")
        rows = document["data"]
        if columns and isinstance(order, list) and sorted(order) == sorted(columns):
            rows = [[dict(zip(order, row, strict=False))[c] for c in columns] for row in rows]
    elif isinstance(document, list) and document and isinstance(document[0], dict):  # records
        keys = columns or list(document[0])
        rows = [[record.get(k) for k in keys] for record in document]
    elif isinstance(document, dict) and "inputs" in document:  # ndarray
        rows = document["inputs"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        return None
    return rows


# -- loading --------------------------------------------------------------------------


def _native(model: MLModel, backend: Backend, options: Mapping[str, Any]) -> LoadedModel:
    from deployer.flavors import flavor_module

    try:
        loaded = flavor_module(backend.flavor).load(str(backend.file), options)
    except DeployerError:
        raise
    except Exception as exc:  # a broken file can raise anything
        raise ValueError(
            f"{backend.file} (MLflow flavour {backend.mlflow_flavor}, loaded with deployer's "
            f"{backend.flavor} flavour): {type(exc).__name__}: {exc}"
        ) from exc
    return dataclasses.replace(loaded, flavor=name)


def _as_output(answer: Any, spec: TensorSpec | None) -> np.ndarray:
    """A pyfunc answer (DataFrame, Series, array, list) as an array shaped like ``spec``."""
    if hasattr(answer, "to_numpy"):
        answer = answer.to_numpy()
    array = np.asarray(answer)
    if array.dtype.kind == "O" and array.size and isinstance(array.flat[0], dict):
        raise ValueError("the model answered a mapping per row; deployer serves arrays")
    if spec is not None and len(spec.shape) == 1 and array.ndim == 2 and array.shape[1] == 1:
        return array.reshape(-1)
    return array


def _pyfunc(model: MLModel, backend: Backend, options: Mapping[str, Any]) -> LoadedModel:
    pyfunc = require("mlflow.pyfunc", extra, name)
    width, datatype, columns = input_spec(model)
    column_types = [COLUMN_TYPES[str(s.get("type"))] for s in model.inputs or ()] if columns else []
    python_model = pyfunc.load_model(str(model.folder))
    sample = input_example(model, columns, options.get("width") or width)

    def frame(rows: np.ndarray) -> Any:
        if columns is None and model.inputs:
            return rows  # a tensor signature: MLflow passes the array through
        pandas = require("pandas", extra, name)
        table = pandas.DataFrame(rows, columns=columns)
        for column, oip in zip(columns or (), column_types, strict=True):
            if oip == "BYTES":
                continue
            values = table[column]
            integral = oip not in ("FP32", "FP64") and values.dtype.kind == "f"
            if integral and not np.isfinite(values.to_numpy()).all():  # the server answers 400
                raise ValueError(
                    f"Input contains NaN or infinity in column {column!r}, "
                    f"which MLflow's signature types {oip}"
                )
            table[column] = values.astype(np.dtype(_NUMPY[oip]))
        return table

    output = output_spec(model)
    if output is None:  # no output signature: ask the model once
        probe_rows = sample or ([[0] * width] if width else None)
        if probe_rows is None:
            raise ValueError(
                f"{model.source}: no signature and no input example; "
                "set model.signature.width in deployer.yaml"
            )
        probe = _as_output(python_model.predict(frame(np.asarray(probe_rows))), None)
        output = TensorSpec("predict", oip_datatype(probe.dtype), (-1, *probe.shape[1:]))
    signature = Signature(
        width=options.get("width") or width,
        datatype=options.get("datatype") or datatype or "FP64",
        outputs=(output,),
    )

    def predict(rows: np.ndarray, method: str, parameters: Mapping[str, Any]) -> Any:
        return _as_output(python_model.predict(frame(rows)), output)

    return LoadedModel(
        flavor=name,
        signature=signature,
        predict_fn=predict,
        batchable=False,  # a pyfunc may look across rows: never batched with others
        extra={"backend": "pyfunc", "note": backend.note, "sample": sample},
    )


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Load the model in ``path`` (a folder with an MLmodel) natively or through pyfunc."""
    if path is None:
        raise ValueError("the mlflow flavour needs model.path (the folder with the MLmodel)")
    model = read_mlmodel(path)
    backend = resolve(model)
    if backend.flavor == "pyfunc":
        return _pyfunc(model, backend, options)
    loaded = _native(model, backend, options)
    _, _, columns = input_spec(model)
    sample = input_example(model, columns, loaded.signature.width)
    loaded.extra.update({"backend": backend.flavor, "mlflow_flavor": backend.mlflow_flavor})
    if sample is not None:
        loaded.extra["sample"] = sample
    return loaded


# -- the registry (deployer init) -----------------------------------------------------


def download_registered(uri: str, folder: Path) -> Path:
    """Download ``models:/NAME/VERSION`` (or ``@alias``) into a new folder under ``folder``."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        raise UsageError(
            f"{uri} is a model registry URI, but MLFLOW_TRACKING_URI is not set",
            hint="export MLFLOW_TRACKING_URI=... (your MLflow server or sqlite:///mlflow.db)",
        )
    reference = uri[len(REGISTRY_PREFIX) :].strip("/")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", reference).strip("-") or "model"
    target = folder / f"mlflow-{slug}"
    artifacts = require("mlflow.artifacts", extra, name)
    target.mkdir(parents=True, exist_ok=True)
    # no tqdm bar: it would leave its monitor thread running in a library caller
    previous = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target))
    except Exception as exc:  # the registry's own errors: name the URI and the store
        raise UsageError(
            f"could not download {uri} from {os.environ['MLFLOW_TRACKING_URI']}: "
            f"{type(exc).__name__}: {str(exc)[:300]}"
        ) from exc
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = previous
    if model_folder(str(target)) is None:
        raise UsageError(f"{uri} downloaded to {target}, but it holds no {MLMODEL} file")
    return target
