"""Wheels of deployer's own distributions (deployer itself, the providers/ packages),
built on the host from their source folders, or fetched at the installed version.

An image installs them with no network and without their declared dependencies (the
image installs exactly the third-party wheels it needs from the wheelhouse). Built
wheels are cached per source digest under ~/.cache/deployer/local-wheels, so an unchanged
source is built once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from deployer._version import __version__
from deployer.errors import MissingDependencyError
from deployer.image.wheelhouse import WheelhouseError, cache_root

_SKIP_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class LocalDistribution:
    """One of deployer's distributions: built from ``source`` (a folder with
    pyproject.toml) whose digest covers ``paths``, or, without a source, fetched from the
    package index as ``name==version``."""

    name: str
    version: str | None
    source: Path | None
    paths: tuple[Path, ...] = ()

    @property
    def origin(self) -> str:
        return str(self.source) if self.source else f"{self.name}=={self.version} (index)"


def normalize(name: str) -> str:
    """PEP 503 name: ``Deployer_AWS`` and ``deployer-aws`` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _checkout() -> Path | None:
    """The source checkout deployer runs from (editable install), if it does."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def deployer_distribution() -> LocalDistribution:
    """deployer itself: its package and the templates its wheel carries."""
    root = _checkout()
    if root is None:
        return LocalDistribution("deployer", __version__, None)
    paths = [root / "pyproject.toml", root / "deployer", root / "templates"]
    return LocalDistribution("deployer", __version__, root, tuple(p for p in paths if p.exists()))


def provider_distribution(provider: str) -> LocalDistribution:
    """The distribution registering ``provider``: installed here (from its source folder
    when it is an editable or path install), else the checkout's providers/ folder."""
    from deployer.providers import KNOWN_DISTRIBUTIONS, available_providers

    entry = available_providers().get(provider)
    if entry is not None and entry.dist is not None:
        package = entry.value.split(":")[0].split(".")[0]
        return _installed(entry.dist.name, entry.dist.version, package)
    name = KNOWN_DISTRIBUTIONS.get(provider, "")
    checkout = _checkout()
    if checkout is not None and name:
        root = checkout / "providers" / name.removeprefix("deployer-")
        if (root / "pyproject.toml").is_file():
            folder = root / name.replace("-", "_")
            return LocalDistribution(name, None, root, (root / "pyproject.toml", folder))
    raise MissingDependencyError(
        f"provider {provider!r} is not installed here, so its distribution cannot be put in "
        "the router image",
        hint=f"pip install {name or 'the distribution that provides it'} on this machine",
    )


def _installed(name: str, version: str, package: str) -> LocalDistribution:
    """An installed distribution: from source when its package sits next to a
    pyproject.toml (editable installs), else the same version from the package index."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if locations and (Path(locations[0]).parent / "pyproject.toml").is_file():
        folder = Path(locations[0])
        return LocalDistribution(
            name, version, folder.parent, (folder.parent / "pyproject.toml", folder)
        )
    return LocalDistribution(name, version, None)


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(root) / name


def digest(dist: LocalDistribution) -> str:
    """What the wheel is made of: every file under ``paths`` (names and bytes), or the
    pinned requirement for an index distribution."""
    hasher = hashlib.sha256(dist.name.encode())
    if dist.source is None:
        hasher.update(f"=={dist.version}".encode())
        return hasher.hexdigest()
    for path in dist.paths:
        for file in _files(path):
            hasher.update(str(file.relative_to(dist.source)).encode() + b"\0")
            hasher.update(hashlib.sha256(file.read_bytes()).digest())
    return hasher.hexdigest()


def wheel(dist: LocalDistribution) -> Path:
    """The distribution's wheel (pure Python), built or fetched once per digest."""
    folder = cache_root().parent / "local-wheels" / f"{normalize(dist.name)}-{digest(dist)[:16]}"
    built = sorted(folder.glob("*.whl"))
    if built:
        return built[0]
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        _pip_wheel(dist, scratch)
        wheels = sorted(scratch.glob("*.whl"))
        if len(wheels) != 1 or not wheels[0].name.endswith("-none-any.whl"):
            names = ", ".join(w.name for w in wheels) or "none"
            raise WheelhouseError(
                f"{dist.name} did not build one pure-Python wheel (got {names})",
                hint="only pure-Python distributions can be built on the host for an image",
            )
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(scratch, folder)  # whole or not at all: a cached folder is complete
        except OSError:
            if not any(folder.glob("*.whl")):  # else another build got there first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder / wheels[0].name


def _pip_wheel(dist: LocalDistribution, into: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet",
    ]  # fmt: skip
    if dist.source is not None:
        command += ["wheel", "--no-deps", "--wheel-dir", str(into), str(dist.source)]
    else:
        command += [
            "download", "--no-deps", "--only-binary=:all:", "--dest", str(into),
            f"{dist.name}=={dist.version}",
        ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n  ".join(result.stderr.strip().splitlines()[-8:])
        raise WheelhouseError(
            f"could not build a wheel of {dist.name} from {dist.origin}:\n  {tail}",
            hint="pip builds it on this machine (the build backend comes from the package index)",
        )


def requirements(wheel_file: Path, local: frozenset[str]) -> list[str]:
    """The wheel's runtime requirements (``Requires-Dist`` without extras-only ones),
    leaving out the distributions in ``local`` (normalized names), which the image gets
    as wheels of their own."""
    with zipfile.ZipFile(wheel_file) as archive:
        name = next(
            n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1
        )
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    result = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement, _, marker = line.partition(";")
        match = _NAME.match(requirement)
        if match is None or "extra" in marker or normalize(match.group(1)) in local:
            continue
        result.append(line.strip())
    return result
