"""deployer's own distributions as wheels: where their source is, the digest that names
them, and the runtime requirements read back from a wheel."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from deployer.errors import MissingDependencyError
from deployer.image import local_wheels
from deployer.image.local_wheels import LocalDistribution

REPO = Path(__file__).resolve().parents[2]


def source(tmp_path: Path) -> LocalDistribution:
    root = tmp_path / "dist"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    (root / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (root / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"x")
    return LocalDistribution("pkg", "1.0", root, (root / "pyproject.toml", root / "pkg"))


def test_the_digest_covers_the_sources_and_nothing_else(tmp_path: Path) -> None:
    dist = source(tmp_path)
    first = local_wheels.digest(dist)
    (dist.paths[1] / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"y")
    (dist.paths[1] / "__pycache__" / "other.pyc").write_bytes(b"z")
    assert local_wheels.digest(dist) == first  # byte code is not source
    (dist.paths[1] / "__init__.py").write_text("VALUE = 2\n")
    assert local_wheels.digest(dist) != first
    (dist.paths[1] / "__init__.py").write_text("VALUE = 1\n")
    (dist.paths[1] / "new.py").write_text("")
    assert local_wheels.digest(dist) != first  # a new module counts
    index = LocalDistribution("pkg", "1.0", None)
    assert local_wheels.digest(index) != local_wheels.digest(LocalDistribution("pkg", "1.1", None))


def test_requirements_come_from_the_wheel_without_extras_or_local_distributions(
    tmp_path: Path,
) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    metadata = (
        "Metadata-Version: 2.3\nName: pkg\nVersion: 1.0\n"
        "Requires-Dist: deployer\n"
        "Requires-Dist: deployer[docker]\n"
        "Requires-Dist: boto3<2,>=1.34\n"
        "Requires-Dist: uvloop>=0.19; sys_platform != 'win32'\n"
        "Requires-Dist: moto[server]>=5.1; extra == 'test'\n"
        "Provides-Extra: test\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/__init__.py", "")
        archive.writestr("pkg-1.0.dist-info/METADATA", metadata)
    found = local_wheels.requirements(wheel, frozenset({"deployer", "pkg"}))
    assert found == ["boto3<2,>=1.34", "uvloop>=0.19; sys_platform != 'win32'"]


def test_deployer_and_its_providers_are_found_in_this_checkout() -> None:
    deployer = local_wheels.deployer_distribution()
    assert deployer.source == REPO
    assert REPO / "templates" in deployer.paths  # the wheel carries them
    aws = local_wheels.provider_distribution("sagemaker")
    assert (aws.name, aws.source) == ("deployer-aws", REPO / "providers" / "aws")
    assert REPO / "providers" / "aws" / "deployer_aws" in aws.paths


def test_a_provider_neither_installed_nor_in_the_checkout_is_a_missing_dependency() -> None:
    with pytest.raises(MissingDependencyError, match="'nowhere' is not installed"):
        local_wheels.provider_distribution("nowhere")
