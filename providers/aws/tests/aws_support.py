"""Helpers for the SageMaker provider's tests: releases without images, a progress recorder."""

from __future__ import annotations

import hashlib

from deployer.image.build import Image
from deployer.providers import Release


def release(seed: str, project: str = "iris") -> Release:
    """A release whose version derives from ``seed`` (no image is built)."""
    image_id = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    model = hashlib.sha256(f"model-{seed}".encode()).hexdigest()
    image = Image(f"{project}:{seed}", image_id, 0, {"dev.deployer.model.sha256": model})
    return Release(project, image, [[0, 0, 0, 0], [0, 0, 0, 0]], {"width": 4})


def image_ref(rel: Release) -> str:
    digest = rel.image.id
    return f"{'1' * 12}.dkr.ecr.us-east-1.amazonaws.com/{rel.project}@{digest}"


class Recorder:
    """A progress callback that keeps every message."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
