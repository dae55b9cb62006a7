"""Model artifacts a platform hands the container, and why the image does not use them.

The image serves the model baked into it, under /opt/deployer/model: a platform may mount
its own folder over /opt/ml/model (SageMaker does, whenever a model artifact is given,
and its SDK's local mode does too), name a copy of the endpoint's artifact in
AIP_STORAGE_URI (Vertex AI) or mount one at AZUREML_MODEL_DIR (Azure ML). None of these
replaces the baked model; each is noted once at start-up so nobody wonders which model
answers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SAGEMAKER_MODEL_DIR = "/opt/ml/model"


def _non_empty_folder(path: str) -> bool:
    folder = Path(path)
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return False


def platform_artifacts(
    environ: Mapping[str, str] | None = None, sagemaker_dir: str = SAGEMAKER_MODEL_DIR
) -> list[str]:
    """Where a platform offered a model artifact to this container (empty: nowhere)."""
    env = os.environ if environ is None else environ
    found = []
    if _non_empty_folder(sagemaker_dir):
        found.append(f"SageMaker's model data at {sagemaker_dir}")
    if env.get("AIP_STORAGE_URI"):
        found.append(f"Vertex AI's artifact at AIP_STORAGE_URI={env['AIP_STORAGE_URI']}")
    azure = env.get("AZUREML_MODEL_DIR", "")
    if azure and _non_empty_folder(azure):
        found.append(f"Azure ML's model at AZUREML_MODEL_DIR={azure}")
    return found


def artifact_notices(model_path: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per platform artifact, saying that the baked model serves instead."""
    served = model_path or "the predictor class built into the image"
    return [
        f"not using {where}: this image serves the model built into it ({served})"
        for where in platform_artifacts(environ)
    ]
