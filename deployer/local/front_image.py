"""The local target's front image (``deployer-front:VERSION-HASH``): deployer/local/front.py
and FRONT_REQUIREMENTS on the same base as the model image, no model.

It runs as the non-root user ``FRONT_USER`` with no setuid binaries, keeps its upstream in
``STATE_DIR`` (owned by that user, so the named volume the provider mounts there is too),
and has a ``HEALTHCHECK`` on its health route.

The tag carries a hash of what goes in, so the image is built once per deployer version
and an unchanged rebuild is a no-op.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from deployer._version import __version__
from deployer.image import wheelhouse
from deployer.image.build import Progress, docker_build, ensure_base_image
from deployer.image.context import LABEL_PREFIX, copy_runtime, copy_wheels, render_dockerfile
from deployer.resources import template_path
from deployer.serving.requirements import FRONT_REQUIREMENTS

REPOSITORY = "deployer-front"
TEMPLATE = "Dockerfile.front.tmpl"
_PACKAGE = Path(__file__).resolve().parent
_SERVING = _PACKAGE.parent / "serving"
# what the front runs, by where it goes under runtime/deployer/
_SOURCES = {
    "local/__init__.py": _PACKAGE / "__init__.py",
    "local/front.py": _PACKAGE / "front.py",
    "serving/__init__.py": _SERVING / "__init__.py",
    "serving/bounded_http.py": _SERVING / "bounded_http.py",
    "serving/connections.py": _SERVING / "connections.py",
}
FRONT_USER = "12345:12345"  # the same ids as the restricted profile the provider runs it with
STATE_DIR = "/var/lib/deployer-front"
HARDENING = f"""
# Added by deployer/local/front_image.py: the state folder, no setuid bits, a non-root
# user and a health check.
RUN mkdir -p {STATE_DIR} && chown {FRONT_USER} {STATE_DIR} \\
 && (find / -xdev -type f -perm /6000 -exec chmod a-s {{}} + 2>/dev/null || true)
ENV DEPLOYER_FRONT_STATE={STATE_DIR}
USER {FRONT_USER}
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \\
  CMD ["/opt/venv/bin/python", "-m", "deployer.local.front", "health"]
"""


def front_image_tag(base: str) -> str:
    """The front image's tag for ``base``."""
    digest = hashlib.sha256(base.encode())
    for source in (
        *_SOURCES.values(),
        template_path(TEMPLATE),
        template_path("dependencies.Dockerfile"),
    ):
        digest.update(source.read_bytes())
    digest.update("\n".join(FRONT_REQUIREMENTS).encode())
    digest.update(HARDENING.encode())
    return f"{REPOSITORY}:{__version__}-{digest.hexdigest()[:10]}"


def ensure_front_image(
    client: Any, base: str, platform: str, python: str, progress: Progress
) -> str:
    """The front image's tag, building it first if this engine does not have it."""
    from docker.errors import ImageNotFound

    tag = front_image_tag(base)
    try:
        client.api.inspect_image(tag)
        return tag
    except ImageNotFound:
        pass
    progress(f"building the local front image {tag} (once per deployer version)")
    ensure_base_image(client, base, progress)
    wheels = wheelhouse.download(list(FRONT_REQUIREMENTS), platform, python)
    labels = {f"{LABEL_PREFIX}.version": __version__, f"{LABEL_PREFIX}.role": "front"}
    with tempfile.TemporaryDirectory(prefix="deployer-front-") as folder:
        context = Path(folder)
        copy_wheels(wheels, context / "wheels")
        copy_runtime(context / "runtime", ())
        for name, source in _SOURCES.items():
            target = context / "runtime" / "deployer" / name
            target.parent.mkdir(exist_ok=True)
            shutil.copy2(source, target)
        (context / "Dockerfile").write_text(render_dockerfile(TEMPLATE, base, labels) + HARDENING)
        docker_build(client, folder, tag, platform, progress)
    return tag
