"""The data a provider takes and returns: targets, releases, strategies, plans,
deployments, statuses, invocations and router backends. Frozen dataclasses, stdlib only."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from deployer.errors import UsageError

if TYPE_CHECKING:
    from deployer.image.build import Image
    from deployer.providers.live import LiveRules
    from deployer.providers.monitoring import CaptureSpec

# The labels (tags) that mark what deployer owns in a cloud: every resource a provider
# creates carries the project and the target; destroy removes only what carries both.
LABEL_PROJECT = "deployer-project"
LABEL_TARGET = "deployer-target"
LABEL_VERSION = "deployer-version"
# Release annotations a push records on the version's resources (values already short).
ANNOTATION_MODEL = "deployer-model-sha256"  # the first 32 hex characters
ANNOTATION_PUSHED_BY = "deployer-pushed-by"
ANNOTATION_GIT_COMMIT = "deployer-git-commit"  # the first 12 characters
ANNOTATION_RELEASE = "deployer-release"  # the release id
ANNOTATION_KEYS = (
    ANNOTATION_MODEL,
    ANNOTATION_PUSHED_BY,
    ANNOTATION_GIT_COMMIT,
    ANNOTATION_RELEASE,
)
# The image label a CUDA image carries (deployer.image.accelerator sets it; absent: cpu).
IMAGE_ACCELERATOR_LABEL = "dev.deployer.accelerator"

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
    root: str | None = None  # deployer.yaml's folder (local state beside it); None: cwd


@dataclass(frozen=True)
class Release:
    """What a push deploys: one image of one model version, plus a smoke-test body."""

    project: str
    image: Image
    sample: list[Any]  # rows, or one {input: value} object per row (named tensors)
    signature: dict[str, Any]
    # Release annotations (ANNOTATION_KEYS; short strings): each provider puts them, as its
    # cloud allows, on what it creates for the version and shows them in Status.details.
    annotations: Mapping[str, str] = field(default_factory=dict)
    # monitoring.capture of deployer.yaml (None: capture nothing); each provider maps it to
    # its platform's capture (deployer.providers.monitoring.CaptureSpec has the units).
    capture: CaptureSpec | None = None

    @property
    def version(self) -> str:
        return self.image.version

    @property
    def accelerator(self) -> str:
        """``cuda`` for an image built with ``image.accelerator: cuda``, else ``cpu``."""
        return self.image.labels.get(IMAGE_ACCELERATOR_LABEL, "cpu")


@dataclass(frozen=True)
class Strategy:
    """How traffic moves to a new version: all at once, a canary share, or linear steps."""

    kind: Literal["all-at-once", "canary", "linear"] = "all-at-once"
    percent: int = 100
    bake_seconds: float = 0.0
    # Live gates (release.live): compare new and old while each step bakes; None: just wait.
    live: LiveRules | None = None

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

    @property
    def steps(self) -> int:
        """Traffic shifts the rollout makes: 1 (all at once), 2 (canary, then the rest)
        or ceil(100 / N) (linear:N)."""
        if self.kind == "all-at-once":
            return 1
        if self.kind == "canary":
            return 2
        return -(-100 // self.percent)

    def rollout_seconds(self, allowance_seconds: float) -> float:
        """The time a rollout needs: each step's bake plus ``allowance_seconds`` per step
        for provisioning (see ``Provider.rollout_allowance_seconds``)."""
        return self.steps * (self.bake_seconds + allowance_seconds)

    def __str__(self) -> str:
        return self.kind if self.kind == "all-at-once" else f"{self.kind}:{self.percent}"


@dataclass(frozen=True)
class Change:
    """One line of a plan: what happens to which resource."""

    action: Literal["create", "update", "delete", "keep"]
    resource: str
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    """What a push would change on one target (``plan`` computes it and changes nothing).

    ``problems``: why the target would refuse the push as planned (for example a
    strategy its platform cannot run on its fleet), each naming the target, what it
    refuses and what would work; empty when the push can go ahead. ``notes``: advice
    that refuses nothing (a CUDA image on a CPU-only instance type, and what to use).
    """

    target: str
    changes: list[Change]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c.action != "keep" for c in self.changes)

    @property
    def ok(self) -> bool:
        """True when the target would accept the push (no ``problems``)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "changed": self.changed,
            "ok": self.ok,
            "changes": [asdict(c) for c in self.changes],
            "problems": list(self.problems),
            "notes": list(self.notes),
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
    """What a target serves now; ``updating`` still serves, and so counts as up for the
    router's control-plane health."""

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
    """One prediction's answer, as the platform returned it."""

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
