"""A CUDA image on Azure ML: the note ``plan`` shows when the VM size has no GPU."""

from __future__ import annotations

import re

from deployer.providers import Release

SUGGESTED = "Standard_NC4as_T4_v3"  # one NVIDIA T4, the smallest managed online GPU size
# NVIDIA sizes: NC (compute), ND (deep learning), NV (visualisation; NVas_v4 is AMD)
_GPU = re.compile(r"^Standard_N([CD]|V(?!\d+as_v4))", re.IGNORECASE)


def has_gpu(instance_type: str) -> bool:
    """Whether an Azure VM size carries an NVIDIA GPU."""
    return bool(_GPU.match(instance_type))


def notes(target: str, instance_type: str, release: Release) -> list[str]:
    """Advice for a CUDA image on a CPU-only VM size (none for a CPU image)."""
    if release.accelerator != "cuda" or has_gpu(instance_type):
        return []
    return [
        f"a CUDA image (image.accelerator: cuda) on {instance_type}, which has no GPU: it "
        f"would serve on the CPU; set targets.{target}.instance_type: {SUGGESTED}"
    ]
