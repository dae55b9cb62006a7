"""Building an image with the docker SDK: ``build_image`` turns a BuildSpec into an Image
(wheelhouse, base image, build context, ``docker build`` with streamed progress and the
failing step on error)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError, MissingDependencyError
from deployer.image.spec import BuildSpec

Progress = Callable[[str], None]
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")


class BuildError(DeployerError):
    """A Dockerfile step failed: carries the step and its last output lines."""

    def __init__(self, step: str, output: list[str], reason: str) -> None:
        tail = "\n".join(f"    {line}" for line in output[-20:])
        super().__init__(f"docker build failed at {step}:\n{tail}\n  {reason}")
        self.step = step
        self.output = output
        self.reason = reason


@dataclass(frozen=True)
class Image:
    """A built image: its tag, content id, size in bytes and labels."""

    ref: str
    id: str
    size: int
    labels: dict[str, str]

    @property
    def model_sha256(self) -> str:
        return self.labels.get("dev.deployer.model.sha256", "")

    @property
    def version(self) -> str:
        """The release version: image id and model digest, short."""
        return f"{self.id.removeprefix('sha256:')[:12]}-{self.model_sha256[:8]}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "version": self.version}


def build_image(
    spec: BuildSpec,
    progress: Progress | None = None,
    *,
    refresh_wheels: bool = False,
    no_cache: bool = False,
) -> Image:
    """Download the wheels on this host, then build ``spec`` with the local Docker engine."""
    import tempfile

    from deployer.image import context, wheelhouse
    from deployer.image.accelerator import index_options
    from deployer.image.engine import docker_client

    say = progress or (lambda _line: None)
    context.check_code(spec)  # a symlink leaving the project: exit 2 before any work
    client = docker_client()
    requirements = wheelhouse.image_requirements(
        spec.flavor, spec.requirements, spec.accelerator, spec.cuda, spec.torch
    )
    say(f"resolving {len(requirements)} requirements for {spec.platform}, Python {spec.python}")
    wheels = wheelhouse.download(
        requirements,
        spec.platform,
        spec.python,
        refresh=refresh_wheels,
        index=index_options(spec.accelerator, spec.cuda),
    )
    ensure_base_image(client, spec.base, say)
    with tempfile.TemporaryDirectory(prefix="deployer-build-") as folder:
        build_context = context.assemble(spec, wheels, Path(folder))
        return docker_build(client, str(build_context.path), spec.tag, spec.platform, say, no_cache)


def ensure_base_image(client: Any, base: str, progress: Progress) -> None:
    """Use the base image if present; otherwise try to pull it once."""
    from docker.errors import APIError, ImageNotFound

    try:
        client.images.get(base)
        return
    except ImageNotFound:
        pass
    progress(f"pulling base image {base}")
    try:
        client.images.pull(base)
    except (APIError, ImageNotFound) as exc:
        raise MissingDependencyError(
            f"base image {base!r} is not on this machine and could not be pulled: "
            f"{getattr(exc, 'explanation', None) or exc}",
            hint="set image.base in deployer.yaml (or DEPLOYER_BASE_IMAGE) to an image you have; "
            "it needs python3 with the venv module",
        ) from None


def follow_build(chunks: Iterable[dict[str, Any]], progress: Progress) -> str:
    """Consume the build stream, report steps, return the image id or raise BuildError."""
    step = "the first step"
    output: list[str] = []
    image_id = ""
    for chunk in chunks:
        if "stream" in chunk:
            for line in chunk["stream"].splitlines():
                match = _STEP.match(line)
                if match:
                    step = f"step {match.group(1)}/{match.group(2)} ({match.group(3)})"
                    output = []
                    progress(line if len(line) <= 100 else line[:97] + "...")
                elif line.strip():
                    output.append(line.rstrip())
                    if line.startswith(" ---> Using cache"):
                        progress("  cached")
        elif "error" in chunk:
            raise BuildError(step, output, chunk["error"].strip())
        elif "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    if not image_id:
        raise BuildError(step, output, "the build ended without producing an image")
    return image_id


def docker_build(
    client: Any, context: str, tag: str, platform: str, progress: Progress, no_cache: bool = False
) -> Image:
    """Build ``context`` with no network and tag the result."""
    from docker.errors import APIError

    try:
        chunks = client.api.build(
            path=context,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            network_mode="none",
            platform=platform,
            nocache=no_cache,
        )
        image_id = follow_build(chunks, progress)
    except APIError as exc:
        raise BuildError("the start of the build", [], str(exc.explanation or exc)) from None
    attrs = client.api.inspect_image(image_id)
    return Image(
        ref=tag, id=image_id, size=int(attrs["Size"]), labels=attrs["Config"].get("Labels") or {}
    )
