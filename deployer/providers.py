"""The provider protocol, its data types, and discovery through entry points.

Every target, the built-in ``local`` one included, is a plugin registered under the
entry-point group ``deployer.providers``. A provider is constructed for one target
(its name and options from deployer.yaml) and one project, and never imports another
provider. The core never imports a cloud SDK: providers do, lazily.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from deployer.errors import ConfigError, MissingDependencyError, UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from deployer.image.build import Image

OptionsT = TypeVar("OptionsT", bound="BaseModel")

ENTRY_POINT_GROUP = "deployer.providers"
# Where the providers we ship live, to say what to install when one is missing.
KNOWN_DISTRIBUTIONS = {
    "sagemaker": "deployer-aws",
    "vertex": "deployer-gcp",
    "azureml": "deployer-azure",
    "kubernetes": "deployer-kubernetes",
}

Progress = Callable[[str], None]
State = Literal["healthy", "updating", "unhealthy", "failed", "absent"]


@dataclass(frozen=True)
class Target:
    """One entry of deployer.yaml ``targets``: its name, provider and provider options."""

    name: str
    provider: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class ProjectInfo:
    """What a provider may know of the project: its name and how its images are built."""

    name: str
    base_image: str = "python:3.11-slim"
    platform: str = "linux/amd64"
    python: str = "3.11"


@dataclass(frozen=True)
class Release:
    """What a push deploys: one image of one model version, plus a smoke-test body."""

    project: str
    image: Image
    sample: list[list[Any]]
    signature: dict[str, Any]

    @property
    def version(self) -> str:
        return self.image.version


@dataclass(frozen=True)
class Strategy:
    """How traffic moves to a new version: all at once, a canary share, or linear steps."""

    kind: Literal["all-at-once", "canary", "linear"] = "all-at-once"
    percent: int = 100
    bake_seconds: float = 0.0

    @classmethod
    def parse(cls, text: str, bake_seconds: float = 0.0) -> Strategy:
        """``all-at-once``, ``canary:10`` or ``linear:25``."""
        match = re.fullmatch(r"(all-at-once)|(canary|linear):(\d{1,2})", text.strip())
        if not match:
            raise UsageError(
                f"unknown strategy {text!r}; expected all-at-once, canary:N or linear:N (1-99)"
            )
        if match.group(1):
            return cls("all-at-once", 100, bake_seconds)
        percent = int(match.group(3))
        if not 1 <= percent <= 99:
            raise UsageError(f"strategy percentage {percent} is out of range; expected 1-99")
        return cls(match.group(2), percent, bake_seconds)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.kind if self.kind == "all-at-once" else f"{self.kind}:{self.percent}"


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "delete", "keep"]
    resource: str
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    target: str
    changes: list[Change]

    @property
    def changed(self) -> bool:
        return any(c.action != "keep" for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "changed": self.changed,
            "changes": [asdict(c) for c in self.changes],
        }


@dataclass(frozen=True)
class Deployment:
    """The outcome of ``deploy``: what is now deployed and what was there before."""

    target: str
    version: str
    previous_version: str | None
    changed: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    target: str
    state: State
    version: str | None = None
    url: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


@dataclass(frozen=True)
class Invocation:
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Backend:
    """How the router reaches a target: URL, auth kind, region."""

    name: str
    provider: str
    url: str
    auth: str = "none"
    region: str | None = None


class Provider(Protocol):
    """What every target implements. Constructed for one target of one project."""

    name: ClassVar[str]

    def __init__(self, target: Target, project: ProjectInfo) -> None: ...

    def plan(self, release: Release) -> Plan: ...

    def publish(self, image: Image, progress: Progress) -> str: ...

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment: ...

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status: ...

    def status(self) -> Status: ...

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation: ...

    def rollback(self, progress: Progress) -> Deployment: ...

    def destroy(self, progress: Progress) -> list[str]: ...

    def route(self) -> Backend: ...


@runtime_checkable
class RendersManifests(Protocol):
    """Optional capability: providers whose targets are declared by manifests (GitOps)."""

    def render_yaml(self, source: Release | str, *, version: str | None = None) -> str: ...

    def write_manifests(
        self, source: Release | str, folder: Path, *, version: str | None = None
    ) -> list[Path]: ...


def parse_options(model: type[OptionsT], target: Target, source: str = "deployer.yaml") -> OptionsT:
    """Validate a target's options with a pydantic model; errors name ``targets.NAME.FIELD``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(dict(target.options))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            elif error["type"] == "missing":
                message = "required field is missing"
            problems.append(f"targets.{target.name}.{field}: {message}")
        raise ConfigError(source, problems) from None


def available_providers() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def provider_class(name: str) -> type[Provider]:
    """The provider plugin called ``name``, or an error saying which distribution to install."""
    entry = available_providers().get(name)
    if entry is None:
        distribution = KNOWN_DISTRIBUTIONS.get(name)
        if distribution:
            raise MissingDependencyError(
                f"provider {name!r} is not installed", hint=f"pip install {distribution}"
            )
        installed = ", ".join(sorted(available_providers())) or "none"
        raise UsageError(f"unknown provider {name!r}; installed providers: {installed}")
    return entry.load()
