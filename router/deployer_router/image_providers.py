"""The router image with providers (``deployer router image --with sagemaker``): what goes
in, the tag that names it, and its ``docker build``.

deployer, deployer-router and each provider distribution are wheels built on the host
(local_wheels) and installed without their declared dependencies; the wheelhouse holds
ROUTER_REQUIREMENTS plus the providers' own runtime requirements (their cloud SDKs). So
the router signs for those clouds and asks their control planes for endpoint status, with
no CLI, docker client or numpy inside. The whole deployer package goes in (a few hundred KB): the
providers import its provider API and image helpers.

The tag hashes everything that goes in (sources, requirements, Dockerfile, base, platform,
Python), computed without building anything, so ``render --format kubernetes`` can name it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from deployer._version import __version__
from deployer.errors import UsageError
from deployer.image import local_wheels, wheelhouse
from deployer.image.build import Progress, docker_build, ensure_base_image
from deployer.image.context import (
    HEALTHCHECK_SCRIPT,
    LABEL_PREFIX,
    RUNTIME_USER,
    add_healthcheck,
    copy_wheels,
    make_readable,
    shared_stages,
)
from deployer.resources import template_path as core_template_path
from deployer_router.requirements import ROUTER_REQUIREMENTS
from deployer_router.resources import read_template, template_path

REPOSITORY = "deployer-router"
DEFAULT_PLATFORM = "linux/amd64"
DEFAULT_PYTHON = "3.11"
TEMPLATE = "Dockerfile.router-providers.tmpl"
# deployer's templates every router image is also made of (shared stages, HEALTHCHECK)
CORE_TEMPLATES = ("dependencies.Dockerfile", "hardened.Dockerfile", HEALTHCHECK_SCRIPT)
# What went in, as labels, so an unchanged rebuild reports it without building anything.
DISTRIBUTIONS_LABEL = f"{LABEL_PREFIX}.router.distributions"
REQUIREMENTS_LABEL = f"{LABEL_PREFIX}.router.requirements"


def default_base() -> str:
    """DEPLOYER_BASE_IMAGE, or the base every deployer image defaults to."""
    return os.environ.get("DEPLOYER_BASE_IMAGE") or "python:3.11-slim"


def known_providers() -> list[str]:
    """Providers a router image can include: the ones deployer ships and any installed
    plugin (``local`` is part of deployer itself)."""
    from deployer.providers import KNOWN_DISTRIBUTIONS, available_providers

    return sorted((set(KNOWN_DISTRIBUTIONS) | set(available_providers())) - {"local"})


def parse_providers(names: Iterable[str]) -> tuple[str, ...]:
    """Validated, sorted, unique provider names (UsageError naming the known ones)."""
    chosen = sorted({n.strip() for n in names if n.strip()})
    known = known_providers()
    for name in chosen:
        if name not in known:
            raise UsageError(
                f"unknown provider {name!r} for the router image; known: {', '.join(known)}",
                hint="pass provider names as deployer.yaml's targets use them, e.g. "
                "--with sagemaker,vertex",
            )
    return tuple(chosen)


@dataclass(frozen=True)
class RouterImagePlan:
    """What a router image with providers is made of, and the tag that names it."""

    tag: str
    base: str
    platform: str
    python: str
    providers: tuple[str, ...]
    distributions: tuple[local_wheels.LocalDistribution, ...]


def plan(
    providers: Iterable[str],
    *,
    base: str | None = None,
    platform: str = DEFAULT_PLATFORM,
    python: str = DEFAULT_PYTHON,
) -> RouterImagePlan:
    """The image for ``providers`` (validated); cheap: hashes sources, builds nothing."""
    chosen = parse_providers(providers)
    if not chosen:
        raise UsageError("a router image with providers needs at least one provider")
    base = base or default_base()
    dists = (
        local_wheels.deployer_distribution(),
        router_distribution(),
        *(local_wheels.provider_distribution(p) for p in chosen),
    )
    digest = hashlib.sha256("\n".join([base, platform, python, *chosen]).encode())
    digest.update(template_path(TEMPLATE).read_bytes())
    for core in CORE_TEMPLATES:
        digest.update(core_template_path(core).read_bytes())
    digest.update("\n".join(ROUTER_REQUIREMENTS).encode())
    for dist in dists:
        digest.update(local_wheels.digest(dist).encode())
    tag = f"{REPOSITORY}:{__version__}-{'-'.join(chosen)}-{digest.hexdigest()[:10]}"
    return RouterImagePlan(tag, base, platform, python, chosen, dists)


def router_distribution() -> local_wheels.LocalDistribution:
    """deployer-router itself, built from its source folder (router/ in a checkout, or any
    folder with its pyproject.toml), else fetched from the index at the installed version."""
    from importlib.metadata import PackageNotFoundError, version

    folder = Path(__file__).resolve().parent
    root = folder.parent
    if (root / "pyproject.toml").is_file():
        return local_wheels.LocalDistribution(
            "deployer-router", None, root, (root / "pyproject.toml", folder)
        )
    try:
        installed = version("deployer-router")
    except PackageNotFoundError:  # imported from a folder on sys.path: the core's version
        installed = __version__
    return local_wheels.LocalDistribution("deployer-router", installed, None)


def dockerfile(template: str, base: str, labels: dict[str, str]) -> str:
    """Fill one of the router's Dockerfile templates, with deployer's shared stages (the
    dependencies, the hardened base), its non-root user and ``labels``."""
    return Template(read_template(template)).substitute(
        base=base,
        user=RUNTIME_USER,
        **shared_stages(base),
        labels=" \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())),
    )


def providers_tag(providers: Iterable[str], base: str | None = None) -> str:
    """The tag ``deployer router image --with PROVIDERS`` builds (default platform and
    Python)."""
    return plan(providers, base=base).tag


@dataclass(frozen=True)
class Contents:
    """The wheels a plan resolves to: deployer's own, and the third-party requirements."""

    wheels: dict[str, Path]
    requirements: list[str]

    def versions(self) -> dict[str, str]:
        return {name: wheel.name.split("-")[1] for name, wheel in self.wheels.items()}


def contents(image: RouterImagePlan) -> Contents:
    """Build (or reuse) deployer's wheels and read the providers' runtime requirements from
    theirs. deployer's and deployer-router's own requirements (CLI, docker client,
    serving) are left out: the router needs only ROUTER_REQUIREMENTS."""
    wheels = {dist.name: local_wheels.wheel(dist) for dist in image.distributions}
    local = frozenset(local_wheels.normalize(name) for name in wheels)
    requirements = list(ROUTER_REQUIREMENTS)
    seen = {_canonical(r) for r in requirements}
    for name, wheel in wheels.items():
        if name in ("deployer", "deployer-router"):
            continue
        for requirement in local_wheels.requirements(wheel, local):
            if _canonical(requirement) not in seen:
                seen.add(_canonical(requirement))
                requirements.append(requirement)
    return Contents(wheels, requirements)


def _canonical(requirement: str) -> str:
    """``pydantic<3,>=2.6`` and ``pydantic>=2.6,<3`` are one requirement."""
    spec, _, marker = requirement.partition(";")
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)", spec)
    if match is None:
        return requirement
    name, rest = local_wheels.normalize(match.group(1)), match.group(2).replace(" ", "")
    return f"{name}{','.join(sorted(rest.split(',')))};{marker.strip()}"


def build_providers_image(
    client: Any, image: RouterImagePlan, resolved: Contents, progress: Progress
) -> None:
    """``docker build`` the planned image with no network: wheels from the host only."""
    ensure_base_image(client, image.base, progress)
    third_party = wheelhouse.download(resolved.requirements, image.platform, image.python)
    labels = {
        f"{LABEL_PREFIX}.version": __version__,
        f"{LABEL_PREFIX}.role": "router",
        f"{LABEL_PREFIX}.router.providers": ",".join(image.providers),
        DISTRIBUTIONS_LABEL: json.dumps(resolved.versions(), sort_keys=True),
        REQUIREMENTS_LABEL: json.dumps(resolved.requirements),
    }
    with tempfile.TemporaryDirectory(prefix="deployer-router-") as folder:
        context = Path(folder)
        copy_wheels(third_party, context / "wheels")
        (context / "distributions").mkdir()
        for wheel in resolved.wheels.values():
            (context / "distributions" / wheel.name).write_bytes(wheel.read_bytes())
        add_healthcheck(context)
        make_readable(context)
        (context / "Dockerfile").write_text(dockerfile(TEMPLATE, image.base, labels))
        docker_build(client, folder, image.tag, image.platform, progress)
