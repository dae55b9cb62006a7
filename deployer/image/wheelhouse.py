"""Resolve and download the image's Python dependencies on the host.

The image installs them with no network (corporate proxies and air-gapped builders
need that). Wheels are cached per (requirements, platform, Python) under
~/.cache/deployer/wheelhouse. Libraries that read the model file (scikit-learn,
xgboost, onnxruntime, numpy, ...) are pinned to the versions installed here, because a
pickle only loads reliably with the library version that wrote it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from deployer.errors import DeployerError
from deployer.image.accelerator import CUDA_UNPINNED, torch_requirement
from deployer.serving.requirements import requirements_for

# Distributions whose host version must match the image (the model file depends on them).
# torch too: the image carries the build the model was tested with, local tag included
# (2.13.0+cpu stays the CPU wheel; an unpinned torch would resolve a CUDA build of GBs).
PIN_TO_HOST = (
    "numpy",
    "scikit-learn",
    "joblib",
    "xgboost",
    "onnxruntime",
    "scipy",
    "torch",
    "lightgbm",
    "catboost",
    "transformers",  # a save_pretrained folder loads with the versions that wrote it
    "tokenizers",
    "keras",  # a .keras file / SavedModel loads with the versions that wrote it
    "tensorflow-cpu",
    "jax",
    "jaxlib",
    "cloudpickle",  # what MLflow's pickles (pyfunc models, sklearn) were written with
)


class WheelhouseError(DeployerError):
    """pip could not resolve or download the image's dependencies."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deployer" / "wheelhouse"


def pinned(requirements: list[str], keep: tuple[str, ...] = ()) -> list[str]:
    """Replace the specifier of a PIN_TO_HOST requirement (not in ``keep``) with ``==``
    the host version."""
    result = []
    for requirement in requirements:
        name = _name_of(requirement)
        try:
            version = metadata.version(name) if name in PIN_TO_HOST and name not in keep else None
        except metadata.PackageNotFoundError:
            version = None
        result.append(f"{name}=={version}" if version else requirement)
    return result


def _name_of(requirement: str) -> str:
    for i, char in enumerate(requirement):
        if char in "<>=!~;[ @":
            return requirement[:i].strip().lower()
    return requirement.strip().lower()


def platform_tags(platform: str) -> list[str]:
    """pip --platform tags for linux/amd64 or linux/arm64 (manylinux up to glibc 2.36)."""
    arch = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}.get(platform)
    if arch is None:
        raise WheelhouseError(
            f"image.platform {platform!r} is not supported; expected linux/amd64 or linux/arm64"
        )
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(17, 37)]
    return [f"manylinux2014_{arch}", *tags, f"linux_{arch}"]


def image_requirements(
    flavor: str,
    extra: tuple[str, ...],
    accelerator: str = "cpu",
    cuda: str | None = None,
    torch: str | None = None,
) -> list[str]:
    """The requirements the image installs, pinned where the model depends on them; a
    CUDA image's torch is its CUDA build (deployer.image.accelerator)."""
    if accelerator != "cuda":
        return pinned(requirements_for(flavor, extra))
    result = pinned(requirements_for(flavor, extra), keep=CUDA_UNPINNED)
    return [torch_requirement(r, cuda, torch) if _name_of(r) == "torch" else r for r in result]


def pip_command(
    requirements: list[str], platform: str, python: str, dest: Path, index: list[str]
) -> list[str]:
    """The ``pip download`` the wheelhouse runs (``index``: extra index options)."""
    version = python.replace(".", "")
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--dest", str(dest),
        "--python-version", python, "--implementation", "cp",
        "--abi", f"cp{version}", "--abi", "abi3", "--abi", "none",
    ]  # fmt: skip
    for tag in platform_tags(platform):
        command += ["--platform", tag]
    return [*command, *index, *requirements]


def download(
    requirements: list[str],
    platform: str,
    python: str,
    *,
    refresh: bool = False,
    index: list[str] | None = None,
) -> Path:
    """Download wheels for ``requirements`` into a cached folder and return it."""
    index = index or []
    key_source = "\n".join([platform, python, *sorted(requirements), *index])
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    folder = cache_root() / key
    marker = folder / ".complete"
    if marker.exists() and not refresh:
        return folder
    command = pip_command(requirements, platform, python, folder, index)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        lines = [
            ln for ln in result.stderr.splitlines() if ln.startswith("ERROR")
        ] or result.stderr.splitlines()[-5:]
        raise WheelhouseError(
            f"could not download wheels for {platform} / Python {python}:\n  " + "\n  ".join(lines),
            hint="every dependency needs a binary wheel for the image's platform; "
            "check image.requirements",
        )
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
    marker.touch()
    return folder
