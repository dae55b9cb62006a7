"""A CUDA image on SageMaker: the note ``plan`` shows when the instance type has no GPU."""

from __future__ import annotations

from deployer.providers import Release
from deployer_aws.options import SageMakerOptions

SUGGESTED = ("ml.g5.xlarge", "ml.g6.xlarge")  # one NVIDIA A10G / L4 each
# SageMaker's NVIDIA families: ml.g4dn, ml.g5, ml.g6, ml.g6e, ml.p3, ml.p4d, ml.p5 ...
_GPU_FAMILIES = ("g", "p")


def has_gpu(instance_type: str) -> bool:
    """Whether ``ml.FAMILY.SIZE`` is an NVIDIA GPU instance type."""
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    return family[:1] in _GPU_FAMILIES and family[1:2].isdigit()


def notes(target: str, options: SageMakerOptions, release: Release) -> list[str]:
    """Advice for a CUDA image on a CPU-only endpoint (none for a CPU image)."""
    if release.accelerator != "cuda":
        return []
    fix = f"set targets.{target}.instance_type: {' or '.join(SUGGESTED)}"
    if options.serverless is not None:
        return [f"a CUDA image on a serverless endpoint, which has no GPU: drop serverless, {fix}"]
    if has_gpu(options.instance_type):
        return []
    return [
        f"a CUDA image (image.accelerator: cuda) on {options.instance_type}, which has no "
        f"GPU: it would serve on the CPU; {fix}"
    ]
