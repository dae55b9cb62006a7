"""Model flavours: detect one from a file, and load a model with it.

Runs in the serving image: stdlib, numpy and the flavour's own library only.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from typing import Any

from deployer.errors import DeployerError
from deployer.flavors.base import Flavor, LoadedModel, ModelLoadError, Signature, TensorSpec

FLAVOR_MODULES = {
    "sklearn": "deployer.flavors.sklearn",
    "onnx": "deployer.flavors.onnx",
    "xgboost": "deployer.flavors.xgboost",
    "python": "deployer.flavors.python",
    "pytorch": "deployer.flavors.pytorch",
    "lightgbm": "deployer.flavors.lightgbm",
    "catboost": "deployer.flavors.catboost",
    "mlflow": "deployer.flavors.mlflow",
    "transformers": "deployer.flavors.transformers_flavor",
    "keras": "deployer.flavors.keras_flavor",
}
FLAVOR_NAMES = tuple(FLAVOR_MODULES)

__all__ = [
    "FLAVOR_NAMES",
    "LoadedModel",
    "ModelLoadError",
    "Signature",
    "TensorSpec",
    "detect_flavor",
    "flavor_module",
    "image_needs",
    "load_model",
]


def flavor_module(flavor: str) -> Flavor:
    """The module implementing ``flavor``."""
    try:
        return importlib.import_module(FLAVOR_MODULES[flavor])
    except KeyError:
        raise ValueError(
            f"unknown flavour {flavor!r}; expected one of {', '.join(FLAVOR_NAMES)}"
        ) from None


def _is_xgboost_json(path: str) -> bool:
    """An XGBoost model saved as JSON is an object with a "learner" key."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            if b'"learner"' in head:
                return True
            document = json.loads(head + f.read())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "learner" in document


def detect_flavor(path: str) -> str | None:
    """Guess the flavour from the file name (and, for .json, its content)."""
    from deployer.flavors.lightgbm import is_lightgbm_text
    from deployer.flavors.mlflow import is_mlflow_model

    if is_mlflow_model(path):  # a folder with an MLmodel file, or models:/NAME/VERSION
        return "mlflow"
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "keras"  # a TensorFlow SavedModel folder
    if os.path.isdir(path):
        from deployer.flavors.transformers_flavor import looks_like_model

        return "transformers" if looks_like_model(path) else None
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".keras":
        return "keras"
    if suffix == ".json":
        return "xgboost" if _is_xgboost_json(path) else None
    for flavor in ("sklearn", "onnx", "xgboost", "catboost", "pytorch"):
        if suffix in flavor_module(flavor).suffixes:
            return flavor
    if is_lightgbm_text(path):  # Booster.save_model writes any suffix: read the first lines
        return "lightgbm"
    return None


def image_needs(
    flavor: str, path: str | None, options: Mapping[str, Any] | None = None
) -> tuple[str, tuple[str, ...]]:
    """The flavour whose runtime the image installs for this model, and the model's own
    extra requirements: an MLflow model maps to a native flavour or brings its own; a
    Keras model brings the backend its options choose."""
    needs = getattr(flavor_module(flavor), "image_needs", None)
    return needs(path, options or {}) if needs is not None and path else (flavor, ())


def load_model(
    flavor: str, path: str | None, options: Mapping[str, Any] | None = None
) -> LoadedModel:
    """Load ``path`` with ``flavor``; every failure names the file and the flavour tried."""
    module = flavor_module(flavor)
    if path is not None and not os.path.exists(path):
        raise ModelLoadError(f"model file {path} does not exist (flavour {flavor})")
    try:
        return module.load(path, options or {})
    except DeployerError:
        raise
    except Exception as exc:  # a broken file can raise anything
        raise ModelLoadError(
            f"could not load model {path} with the {flavor} flavour: {type(exc).__name__}: {exc}"
        ) from exc
