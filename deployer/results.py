"""What push and destroy return: typed results the CLI renders and ``to_dict`` serialises."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from deployer.journal import JournalEntry

Policy = Literal["rollback", "keep"]
POLICIES: tuple[Policy, ...] = ("rollback", "keep")
Outcome = Literal["updated", "unchanged", "failed", "rolled back", "removed"]


@dataclass
class TargetResult:
    """What happened to one target."""

    target: str
    provider: str
    outcome: Outcome = "failed"
    version: str | None = None
    previous_version: str | None = None
    live_version: str | None = None
    url: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in ("updated", "unchanged")

    @property
    def changed(self) -> bool:
        return self.outcome == "updated"


@dataclass
class PushResult:
    """A release pushed to targets: per-target results, the journal, the overall status."""

    project: str
    version: str
    image: dict[str, Any]
    targets: list[TargetResult]
    policy: Policy = "rollback"
    strategy: str = "all-at-once"
    dry_run: bool = False
    plans: list[dict[str, Any]] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)
    seconds: float = 0.0
    router_manifest: str | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)  # deployer.gates.GateResult's
    override: dict[str, Any] | None = None  # {"reason": ...} when gates were overridden
    blocked: bool = False  # a gate failed: nothing was built or changed

    @property
    def ok(self) -> bool:
        return not self.dry_run and not self.blocked and all(t.ok for t in self.targets)

    @property
    def refused(self) -> list[str]:
        """Targets whose plan (a dry run) lists problems: they would refuse the push."""
        return [p["target"] for p in self.plans if p.get("problems")]

    @property
    def status(self) -> str:
        """succeeded, degraded (keep), rolled back (rollback); for a dry run planned, or
        refused when a target's plan lists problems; blocked when a release gate failed."""
        if self.blocked:
            return "blocked"
        if self.dry_run:
            return "refused" if self.refused else "planned"
        if self.ok:
            return "succeeded"
        return "degraded" if self.policy == "keep" else "rolled back"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["status"] = self.status
        for target, result in zip(data["targets"], self.targets, strict=True):
            target["ok"] = result.ok
        return data


class DestroyResult(Mapping[str, list[str]]):
    """What ``Project.destroy`` did: a mapping of each target to the resources removed,
    plus the backends taken out of (or, in a dry run, that would leave) router.yaml."""

    def __init__(
        self,
        removed: dict[str, list[str]],
        router_manifest: str | None = None,
        router_backends: list[str] | None = None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.removed = removed
        self.router_manifest = router_manifest  # the file changed, or that would change
        self.router_backends = list(router_backends or [])
        self.dry_run = dry_run

    def __getitem__(self, target: str) -> list[str]:
        return self.removed[target]

    def __iter__(self) -> Iterator[str]:
        return iter(self.removed)

    def __len__(self) -> int:
        return len(self.removed)

    def __repr__(self) -> str:
        return f"DestroyResult({self.to_dict()!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "router_manifest": self.router_manifest,
            "router_backends": self.router_backends,
            "dry_run": self.dry_run,
        }
