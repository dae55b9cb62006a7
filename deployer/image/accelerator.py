"""What ``image.accelerator: cuda`` changes in an image: the torch requirement, pip's
index, the Dockerfile's NVIDIA environment and the image's labels.

A CPU image (the default) is untouched by all of this. A CUDA image installs the CUDA
build of torch, the same version as the host's (``2.13.0+cpu`` on the host gives
``torch==2.13.0``, which PyPI's Linux wheel is: CUDA, with the nvidia-* wheels as its
dependencies) or ``image.torch``; ``image.cuda: "12.8"`` asks for the build of that CUDA
version from PyTorch's own index (``torch==2.13.0+cu128``). The NVIDIA container toolkit
reads ``NVIDIA_VISIBLE_DEVICES`` / ``NVIDIA_DRIVER_CAPABILITIES`` to mount the host's
driver; the CUDA user-space libraries come in the wheels, so no CUDA base image is needed.
"""

from __future__ import annotations

from importlib import metadata

ACCELERATOR_LABEL = "dev.deployer.accelerator"
CUDA_LABEL = "dev.deployer.cuda"
TORCH_INDEX = "https://download.pytorch.org/whl/cu{tag}"
# The ENV lines a CUDA image adds (appended to the Dockerfile's ENV instruction).
NVIDIA_ENV = {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
# What this build pins to the host only on a CPU image: a CUDA image's torch is chosen here.
CUDA_UNPINNED = ("torch",)


def cuda_tag(cuda: str) -> str:
    """The suffix of PyTorch's index and local versions: "12.8" gives "128"."""
    return cuda.replace(".", "")


def host_torch() -> str | None:
    """The host's torch version without its local tag (2.13.0+cpu -> 2.13.0), or None."""
    try:
        return metadata.version("torch").split("+", 1)[0]
    except metadata.PackageNotFoundError:
        return None


def torch_requirement(requirement: str, cuda: str | None, torch: str | None) -> str:
    """The CUDA image's torch: ``image.torch`` or the host's version (plus ``+cuXYZ`` when
    ``image.cuda`` is set); the flavour's own range when neither is known."""
    version = torch or host_torch()
    if version is None:
        return requirement
    local = f"+cu{cuda_tag(cuda)}" if cuda else ""
    return f"torch=={version}{local}"


def index_options(accelerator: str, cuda: str | None) -> list[str]:
    """pip options for a CUDA image with ``image.cuda``: PyTorch's index for that version."""
    if accelerator != "cuda" or not cuda:
        return []
    return ["--extra-index-url", TORCH_INDEX.format(tag=cuda_tag(cuda))]


def dockerfile_env(accelerator: str) -> str:
    """Continuation lines for the final stage's ENV instruction ("" for a CPU image)."""
    if accelerator != "cuda":
        return ""
    return "".join(f" \\\n    {k}={v}" for k, v in NVIDIA_ENV.items())


def labels(accelerator: str, cuda: str | None) -> dict[str, str]:
    """The labels a CUDA image carries (none for a CPU image: it stays as it was)."""
    if accelerator != "cuda":
        return {}
    return {ACCELERATOR_LABEL: "cuda", **({CUDA_LABEL: cuda} if cuda else {})}
