"""The records push, rollback and destroy append to the audit log.

Each action appends two records with the same ``release`` id: one with
``"outcome": "started"`` before anything changes on any target (its targets
``"pending"``), then one with the outcome once it is known. A process that dies in
between (a crash, a kill, a lost CI runner) leaves the started record: ``history`` shows
that release as ``interrupted``, and the gates still find the metrics of a version
that the provider reports live. A push that the gates block appends one record,
``"outcome": "blocked"``: nothing changed, but the attempt is on record.

Record fields (the schema shared with the providers' annotations, see
``deployer.providers.Release.annotations``): ``seq``, ``time``, ``action``, ``release``,
``who``, ``project``, ``model_sha256``, ``image {ref, digest}``, ``version``, ``targets
{name: {outcome, version, previous_version, ...}}``, ``strategy``, ``gates``,
``override``, ``metrics``, ``why {reason, git_commit, git_message}``, ``outcome``,
``error``, ``prev_hash``, ``hash``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from deployer.audit.chain import AuditLog
from deployer.audit.identity import who, why
from deployer.errors import DeployerError

if TYPE_CHECKING:
    from deployer.gates import GateReport
    from deployer.providers import Deployment, Provider, Release
    from deployer.results import PushResult

R = TypeVar("R", bound=Mapping[str, list[str]])
STARTED, BLOCKED, SUCCEEDED, FAILED = "started", "blocked", "succeeded", "failed"
PENDING, PARTIAL = "pending", "partial"


def new_release_id() -> str:
    """A release id that is a valid label on every cloud: ``YYYYMMDD-HHMMSS-xxxxxx``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass
class AuditTrail:
    """One action's records: who and why (read once), the project's facts, the gates."""

    folder: Path
    project: str
    reason: str | None = None
    model_sha256: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    gates: GateReport | None = None
    release_id: str = field(default_factory=new_release_id)
    who: dict[str, Any] = field(init=False)
    why: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.who = who(self.folder)
        self.why = why(self.folder, self.reason)
        self.log = AuditLog(self.folder)

    # -- records -----------------------------------------------------------------------

    def append(self, action: str, outcome: str, **facts: Any) -> dict[str, Any]:
        """Append one record of ``action`` with ``outcome`` and the given fields."""
        gates = self.gates
        record: dict[str, Any] = {
            "action": action,
            "release": self.release_id,
            "who": self.who,
            "project": self.project,
            "model_sha256": self.model_sha256 if action == "push" else None,
            "image": {"ref": None, "digest": None},
            "version": None,
            "targets": {},
            "strategy": None,
            "gates": gates.to_dicts() if gates else [],
            "override": {"reason": gates.override} if gates and gates.override else None,
            "metrics": dict(self.metrics) if action == "push" else {},
            "why": self.why,
            "outcome": outcome,
            "error": None,
            **facts,
        }
        return self.log.append(record)

    def annotations(self, release: Release) -> dict[str, str]:
        """What providers put on the version's resources (shared keys, short values)."""
        found = {
            "deployer-model-sha256": release.image.model_sha256[:32],
            "deployer-pushed-by": str(self.who.get("name") or "")[:63],
            "deployer-git-commit": (self.why.get("git_commit") or "")[:12],
            "deployer-release": self.release_id,
        }
        return {k: v for k, v in found.items() if v}

    # -- push (the recorder orchestrate.push_release calls) ----------------------------

    def start(self, release: Release, targets: list[str], strategy: str) -> Release:
        """Before any target changes: the started record; the release, annotated."""
        self.append(
            "push",
            STARTED,
            image=_image(release),
            version=release.version,
            strategy=strategy,
            targets={
                name: {"outcome": PENDING, "version": release.version, "previous_version": None}
                for name in targets
            },
        )
        return replace(release, annotations=self.annotations(release))

    def finish(self, result: PushResult) -> None:
        """The push's outcome: each target's, and the release's (succeeded, degraded...)."""
        self.append(
            "push",
            result.status,
            image={"ref": result.image.get("ref"), "digest": result.image.get("id")},
            version=result.version,
            strategy=result.strategy,
            targets={
                t.target: {
                    "outcome": t.outcome,
                    "version": t.version,
                    "previous_version": t.previous_version,
                    "live_version": t.live_version,
                    "error": t.error,
                }
                for t in result.targets
            },
        )

    def blocked(self, targets: list[str], strategy: str) -> None:
        """A push the gates stopped before anything changed."""
        self.append(
            "push",
            BLOCKED,
            strategy=strategy,
            targets={
                n: {"outcome": BLOCKED, "version": None, "previous_version": None} for n in targets
            },
            error="; ".join(r.describe() for r in (self.gates.failures if self.gates else [])),
        )

    # -- rollback and destroy ------------------------------------------------------------

    def rollback(
        self, providers: Mapping[str, Provider], say: Callable[[str], None]
    ) -> list[Deployment]:
        """Roll each target back in turn, recording the start and what happened (the first
        failure stops the rest, is recorded, "partial" when targets before it went back,
        then raised)."""
        self.append("rollback", STARTED, targets=_pending(providers))
        done: list[Deployment] = []
        targets: dict[str, Any] = {}
        try:
            for name, provider in providers.items():
                targets[name] = {"outcome": FAILED, "version": None, "previous_version": None}
                deployment = provider.rollback(say)
                done.append(deployment)
                targets[name] = {
                    "outcome": "rolled back",
                    "version": deployment.version,
                    "previous_version": deployment.previous_version,
                }
        except DeployerError as exc:
            targets[name]["error"] = str(exc)
            self.append("rollback", PARTIAL if done else FAILED, targets=targets, error=str(exc))
            raise
        self.append("rollback", SUCCEEDED, targets=targets)
        return done

    def destroy(self, names: list[str], run: Callable[[], R]) -> R:
        """Run the destroy ``run`` between the started record and the outcome's."""
        self.append("destroy", STARTED, targets=_pending(names))
        try:
            removed = run()
        except DeployerError as exc:
            self.append("destroy", FAILED, targets=_pending(names, FAILED), error=str(exc))
            raise
        targets = {
            name: {
                "outcome": "destroyed",
                "version": None,
                "previous_version": None,
                "removed": len(items),
            }
            for name, items in removed.items()
        }
        self.append("destroy", SUCCEEDED, targets=targets)
        return removed


def _image(release: Release) -> dict[str, Any]:
    return {"ref": release.image.ref, "digest": release.image.id}


def _pending(names: Mapping[str, Any] | list[str], outcome: str = PENDING) -> dict[str, Any]:
    return {n: {"outcome": outcome, "version": None, "previous_version": None} for n in names}
