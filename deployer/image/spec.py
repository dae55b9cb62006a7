"""What a serving image is built from: a plain, frozen build spec.

The image code reads only this (never deployer.yaml or a ``Project``), so anything that
can fill one in can build an image. ``Project.build_spec`` fills it in from deployer.yaml.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.serving.settings import ServingSettings

BASE_IMAGE_ENV = "DEPLOYER_BASE_IMAGE"


@dataclass(frozen=True)
class BuildSpec:
    """Everything ``build_image`` needs; paths are absolute or relative to the caller."""

    name: str  # the project: names the image in its labels
    tag: str  # REPOSITORY:TAG given to the built image
    flavor: str  # picks the flavour's requirements; labels the image
    artifact_sha256: str  # what the image serves (model file, or a predictor's code)
    model_path: Path | None  # model file or folder, copied into the image
    code: tuple[Path, ...]  # python flavour: folders or files made importable in the image
    settings: ServingSettings  # the server's settings (paths and port are the image's own)
    base: str  # the base image (see ``base_image``)
    platform: str  # linux/amd64 or linux/arm64
    python: str  # the base image's Python (3.11 ...), for the wheelhouse
    requirements: tuple[str, ...] = ()  # extra pip requirements, on top of the flavour's
    source: Path | None = None  # a folder whose git commit labels the image
    accelerator: str = "cpu"  # cpu, or cuda: CUDA torch wheels and the NVIDIA runtime env
    cuda: str | None = None  # cuda: the CUDA version of the torch wheels (12.8), else PyPI's
    torch: str | None = None  # cuda: the torch version, else the host's without +cpu
    # the training baseline baked for the drift gauges (deployer.image.baseline), or None
    baseline: dict[str, Any] | None = None


def base_image(configured: str) -> str:
    """image.base, overridden by DEPLOYER_BASE_IMAGE (tests and air-gapped builders)."""
    return os.environ.get(BASE_IMAGE_ENV) or configured
