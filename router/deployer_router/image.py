"""The router images: the router on the same base as the model image, no model.

- The default image (``deployer-router:VERSION-HASH``): the ``deployer.router`` package
  and ROUTER_REQUIREMENTS. It runs the local target's front proxy and the built-in router
  with the ``none`` and ``bearer`` auth kinds and active/passive health.
- With providers (``deployer-router:VERSION-PROVIDERS-HASH``): see router_providers.

A tag carries a hash of what goes in, so an image is built once and an unchanged rebuild
is a no-op. ``make`` is what ``deployer router image`` runs: build either, tag, push.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deployer._version import __version__
from deployer.errors import UsageError
from deployer.image import wheelhouse
from deployer.image.build import Progress, docker_build, ensure_base_image
from deployer.image.context import (
    LABEL_PREFIX,
    add_healthcheck,
    copy_runtime,
    copy_wheels,
    make_readable,
)
from deployer.resources import template_path as core_template_path
from deployer_router.image_providers import (
    CORE_TEMPLATES,
    DEFAULT_PLATFORM,
    DEFAULT_PYTHON,
    DISTRIBUTIONS_LABEL,
    REPOSITORY,
    REQUIREMENTS_LABEL,
    build_providers_image,
    contents,
    default_base,
    dockerfile,
    parse_providers,
    plan,
)
from deployer_router.requirements import ROUTER_REQUIREMENTS
from deployer_router.resources import template_path

TEMPLATE = "Dockerfile.router.tmpl"
# deployer.router: the router.yaml schema and signer lookup; deployer.providers: the
# provider SDK the router signs through
CORE_PACKAGES = ("router", "providers")
_PACKAGE = Path(__file__).resolve().parent
_NAME = r"[a-z0-9]+([._:/-][a-z0-9]+)*"  # registry[:port]/path (docker's, simplified)


# -- the default image ---------------------------------------------------------------------


def router_image_tag(base: str) -> str:
    """The default router image's tag."""
    import deployer.router

    digest = hashlib.sha256(base.encode())
    core = Path(deployer.router.__file__).resolve().parent.parent
    sources = sorted(p for sub in CORE_PACKAGES for p in (core / sub).rglob("*.py"))
    sources += sorted(_PACKAGE.rglob("*.py"))
    sources += [template_path(TEMPLATE), *(core_template_path(t) for t in CORE_TEMPLATES)]
    for source in sources:
        digest.update(source.read_bytes())
    digest.update("\n".join(ROUTER_REQUIREMENTS).encode())
    return f"{REPOSITORY}:{__version__}-{digest.hexdigest()[:10]}"


def ensure_router_image(
    client: Any, base: str, platform: str, python: str, progress: Progress
) -> str:
    """The default router image's tag, building it first if this engine does not have it."""
    tag = router_image_tag(base)
    if _inspect(client, tag) is not None:
        return tag
    progress(f"building the router image {tag} (once per deployer version)")
    ensure_base_image(client, base, progress)
    wheels = wheelhouse.download(list(ROUTER_REQUIREMENTS), platform, python)
    labels = {f"{LABEL_PREFIX}.version": __version__, f"{LABEL_PREFIX}.role": "router"}
    with tempfile.TemporaryDirectory(prefix="deployer-router-") as folder:
        context = Path(folder)
        copy_wheels(wheels, context / "wheels")
        copy_runtime(context / "runtime", CORE_PACKAGES)
        shutil.copytree(
            _PACKAGE,
            context / "runtime" / _PACKAGE.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "templates"),
        )
        add_healthcheck(context)
        make_readable(context)
        (context / "Dockerfile").write_text(dockerfile(TEMPLATE, base, labels))
        docker_build(client, folder, tag, platform, progress)
    return tag


# -- the command's API ---------------------------------------------------------------------


@dataclass
class RouterImage:
    """What ``deployer router image`` made (or would make, with ``dry_run``)."""

    tag: str
    providers: list[str]
    size: int | None = None  # bytes, as the engine reports it
    id: str | None = None
    built: bool = False  # False: the engine already had it (or a dry run)
    dry_run: bool = False
    distributions: dict[str, str] = field(default_factory=dict)  # name -> version
    requirements: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # extra tags (--tag)
    pushed: str | None = None  # repository@digest

    @property
    def ref(self) -> str:
        """What a Deployment should run: the pushed digest, else the tag."""
        return self.pushed or (self.tags[0] if self.tags else self.tag)

    def to_dict(self) -> dict[str, Any]:
        size_mb = round(self.size / 1e6, 1) if self.size is not None else None
        return {**asdict(self), "size_mb": size_mb, "ref": self.ref}


def make(
    client: Any,
    providers: Iterable[str] = (),
    *,
    base: str | None = None,
    platform: str = DEFAULT_PLATFORM,
    python: str = DEFAULT_PYTHON,
    tag: str | None = None,
    push: str | None = None,
    auth: Any = None,
    dry_run: bool = False,
    progress: Progress = lambda _line: None,
) -> RouterImage:
    """Build the router image for ``providers`` (none: the default image) unless this
    engine has it, then add ``tag`` and push to the ``push`` registry (with ``auth``, a
    RegistryAuth, or the engine's own credentials). ``client`` None: connect to the
    engine, except for a ``dry_run``, which builds nothing and says what would go in."""
    chosen = parse_providers(providers)
    base = base or default_base()
    _check_options(tag, push)
    if client is None and not dry_run:
        from deployer.image.engine import docker_client

        client = docker_client()
    image = plan(chosen, base=base, platform=platform, python=python) if chosen else None
    result = RouterImage(image.tag if image else router_image_tag(base), list(chosen))
    result.dry_run = dry_run
    found = _inspect(client, result.tag) if client is not None else None
    if found is None:  # what goes in: deployer's wheels are built here, on the host
        resolved = contents(image) if image else None
        result.distributions = resolved.versions() if resolved else {}
        result.requirements = resolved.requirements if resolved else list(ROUTER_REQUIREMENTS)
        if dry_run:
            return result
        progress(f"building {result.tag}")
        if image is not None and resolved is not None:
            build_providers_image(client, image, resolved, progress)
        else:
            ensure_router_image(client, base, platform, python, progress)
        result.built = True
        found = _inspect(client, result.tag)
        assert found is not None, result.tag
    else:  # an unchanged rebuild: nothing to do, what went in is in the labels
        labels = found["Config"].get("Labels") or {}
        result.distributions = json.loads(labels.get(DISTRIBUTIONS_LABEL) or "{}")
        result.requirements = json.loads(labels.get(REQUIREMENTS_LABEL) or "null") or list(
            ROUTER_REQUIREMENTS
        )
    result.id, result.size = found["Id"], int(found["Size"])
    if dry_run:
        return result
    if tag is not None:
        repository, _, version = tag.rpartition(":") if _has_tag(tag) else (tag, "", "latest")
        client.api.tag(result.id, repository, version)
        result.tags.append(f"{repository}:{version}")
    if push is not None:
        result.pushed = _push(client, result, push, auth, progress)
    return result


def _check_options(tag: str | None, push: str | None) -> None:
    if tag is not None:
        _check_reference(tag, "--tag")
    if push is not None and not re.fullmatch(_NAME, push.rstrip("/")):
        raise UsageError(
            f"--push {push!r} is not a registry",
            hint="a lower-case registry host, with a port and a namespace if needed, e.g. "
            "registry.example.com/team or 127.0.0.1:5000",
        )


def _push(client: Any, result: RouterImage, registry: str, auth: Any, progress: Progress) -> str:
    from deployer.image.registry import push_image

    name = result.tags[0] if result.tags else result.tag
    repository, _, version = name.rpartition(":")
    target = f"{registry.rstrip('/')}/{repository}"
    progress(f"pushing {target}:{version}")
    assert result.id is not None
    return push_image(client, result.id, target, version, auth, progress)


def _has_tag(reference: str) -> bool:
    return ":" in reference.rsplit("/", 1)[-1]


def _check_reference(reference: str, option: str) -> None:
    if not re.fullmatch(rf"{_NAME}(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?", reference):
        raise UsageError(
            f"{option} {reference!r} is not a valid image reference",
            hint="a lower-case repository with an optional registry and tag, e.g. "
            "registry.example.com/team/deployer-router:1",
        )


def _inspect(client: Any, reference: str) -> dict[str, Any] | None:
    from docker.errors import ImageNotFound

    try:
        return dict(client.api.inspect_image(reference))
    except ImageNotFound:
        return None
