"""A CUDA image on Vertex AI: the note ``plan`` shows when no accelerator is attached
(Vertex attaches GPUs through ``accelerator_type``/``accelerator_count`` in the deployed
model's dedicated resources, next to the machine type)."""

from __future__ import annotations

from deployer.providers import Release
from deployer_gcp.options import VertexOptions

SUGGESTED_MACHINE = "n1-standard-4"
SUGGESTED_ACCELERATOR = "NVIDIA_TESLA_T4"


def notes(target: str, options: VertexOptions, release: Release) -> list[str]:
    """Advice for a CUDA image deployed without a GPU (none for a CPU image)."""
    if release.accelerator != "cuda" or options.accelerator_type:
        return []
    return [
        f"a CUDA image (image.accelerator: cuda) on {options.machine_type} with no "
        f"accelerator: it would serve on the CPU; set targets.{target}.machine_type: "
        f"{SUGGESTED_MACHINE}, accelerator_type: {SUGGESTED_ACCELERATOR}, accelerator_count: 1"
    ]
