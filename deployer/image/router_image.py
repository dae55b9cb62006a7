"""The router image: the front proxy (and later the router) on the same base, no model.

Built once per deployer code version and reused: its tag carries a hash of the router
code, its requirements and its Dockerfile.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from deployer._version import __version__
from deployer.image import wheelhouse
from deployer.image.build import Progress, docker_build, ensure_base_image
from deployer.image.context import LABEL_PREFIX, copy_runtime, copy_wheels, render_dockerfile
from deployer.resources import template_path
from deployer.serving.requirements import ROUTER_REQUIREMENTS

ROUTER_PACKAGES = ("router",)
REPOSITORY = "deployer-router"


def router_image_tag(base: str) -> str:
    digest = hashlib.sha256(base.encode())
    package = Path(__file__).resolve().parent.parent
    sources = sorted((package / "router").rglob("*.py"))
    sources += [template_path("Dockerfile.router.tmpl"), template_path("dependencies.Dockerfile")]
    for source in sources:
        digest.update(source.read_bytes())
    digest.update("\n".join(ROUTER_REQUIREMENTS).encode())
    return f"{REPOSITORY}:{__version__}-{digest.hexdigest()[:10]}"


def ensure_router_image(
    client: Any, base: str, platform: str, python: str, progress: Progress
) -> str:
    """The router image's tag, building it first if this engine does not have it."""
    from docker.errors import ImageNotFound

    tag = router_image_tag(base)
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    progress(f"building the router image {tag} (once per deployer version)")
    ensure_base_image(client, base, progress)
    wheels = wheelhouse.download(list(ROUTER_REQUIREMENTS), platform, python)
    labels = {f"{LABEL_PREFIX}.version": __version__, f"{LABEL_PREFIX}.role": "router"}
    with tempfile.TemporaryDirectory(prefix="deployer-router-") as folder:
        context = Path(folder)
        copy_wheels(wheels, context / "wheels")
        copy_runtime(context / "runtime", ROUTER_PACKAGES)
        (context / "Dockerfile").write_text(
            render_dockerfile("Dockerfile.router.tmpl", base, labels)
        )
        docker_build(client, folder, tag, platform, progress)
    return tag
