"""The pytorch image's torch: pinned to the host's build (the CPU wheel here), never an
unpinned torch that would resolve a CUDA build of several GB."""

from __future__ import annotations

from importlib import metadata

import pytest

from deployer.image.wheelhouse import image_requirements
from deployer.serving.requirements import FLAVOR_REQUIREMENTS


def test_the_flavour_requires_torch() -> None:
    assert FLAVOR_REQUIREMENTS["pytorch"] == ("torch>=2.4,<3",)


def test_torch_is_pinned_to_the_host_build() -> None:
    try:
        host = metadata.version("torch")
    except metadata.PackageNotFoundError:
        pytest.skip("torch is not installed on this host")
    requirements = image_requirements("pytorch", ())
    assert f"torch=={host}" in requirements
    assert not any(r.startswith("torch") and r != f"torch=={host}" for r in requirements)


def test_other_flavours_carry_no_torch() -> None:
    for flavor in ("sklearn", "onnx", "xgboost", "python"):
        assert not any(r.startswith("torch") for r in image_requirements(flavor, ()))
