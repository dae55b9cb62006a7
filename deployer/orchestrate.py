"""Push one release to several targets in parallel, with a journal and a failure policy.

Every target runs the same stages in its own thread: read what is live, publish the
image, deploy, wait for health, smoke-test through the target's own invoke path.
Then the policy applies to the whole release:

- ``rollback`` (default): if any target failed, every target that changed goes back to
  its previous version, and a target that had none is removed;
- ``keep``: successful targets stay on the new version and the release is "degraded".

Whatever the policy, a failed target that had a previous version is put back on it
(automatic rollback when the new version fails its health or smoke check). What changed
is read from the provider itself (the live version before and after), never guessed.
Every step lands in the journal, so the summary says exactly what changed, what was
rolled back and what is left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from deployer.errors import DeployerError, UsageError
from deployer.providers import Plan, Provider, Release, Strategy

Event = Callable[[str, str], None]  # (target, message)
Policy = Literal["rollback", "keep"]
POLICIES: tuple[Policy, ...] = ("rollback", "keep")
Outcome = Literal["updated", "unchanged", "failed", "rolled back", "removed"]


@dataclass(frozen=True)
class JournalEntry:
    seconds: float
    target: str
    step: str
    detail: str = ""


class Journal:
    """Thread-safe record of every step; forwards each entry to the live view."""

    def __init__(self, event: Event | None = None) -> None:
        self.entries: list[JournalEntry] = []
        self._event = event
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def record(self, target: str, step: str, detail: str = "") -> None:
        entry = JournalEntry(round(time.monotonic() - self._started, 3), target, step, detail)
        with self._lock:
            self.entries.append(entry)
        if self._event:
            self._event(target, f"{step}: {detail}" if detail else step)

    def for_target(self, target: str) -> list[JournalEntry]:
        return [e for e in self.entries if e.target == target]


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

    @property
    def ok(self) -> bool:
        return not self.dry_run and all(t.ok for t in self.targets)

    @property
    def status(self) -> str:
        """succeeded, degraded (keep), rolled back (rollback), or planned (dry run)."""
        if self.dry_run:
            return "planned"
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


class SmokeTestFailed(DeployerError):
    """The new version answered the smoke prediction wrongly."""


def smoke_test(provider: Provider, release: Release) -> str:
    """One prediction through the provider's real invoke path; raises if it is wrong."""
    body = orjson.dumps(release.sample)
    invocation = provider.invoke(body, "application/json", "application/json")
    if invocation.status != 200:
        raise SmokeTestFailed(
            f"smoke prediction answered {invocation.status}: "
            f"{invocation.body[:300].decode(errors='replace')}"
        )
    try:
        predictions = orjson.loads(invocation.body)["predictions"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise SmokeTestFailed(f"smoke prediction returned {invocation.body[:300]!r}") from None
    if len(predictions) != len(release.sample):
        raise SmokeTestFailed(
            f"smoke prediction returned {len(predictions)} rows for {len(release.sample)}"
        )
    return f"{len(predictions)} rows"


def _live_version(provider: Provider) -> str | None:
    try:
        status = provider.status()
    except DeployerError:
        return None
    return status.version if status.state != "absent" else None


def push_target(
    provider: Provider,
    target: str,
    release: Release,
    strategy: Strategy,
    timeout: float,
    journal: Journal,
) -> TargetResult:
    """Run every stage for one target; a failure is recorded, never raised."""
    result = TargetResult(target, provider.name, version=release.version)
    started = time.monotonic()

    def progress(message: str) -> None:
        journal.record(target, "progress", message)

    try:
        result.previous_version = _live_version(provider)
        journal.record(target, "live before", result.previous_version or "nothing deployed")
        journal.record(target, "publish")
        image_ref = provider.publish(release.image, progress)
        journal.record(target, "published", image_ref)
        journal.record(target, "deploy", str(strategy))
        deployment = provider.deploy(release, image_ref, strategy, progress)
        journal.record(target, "deployed", "changed" if deployment.changed else "no change")
        journal.record(target, "wait")
        status = provider.wait(deployment, timeout, progress)
        if not status.healthy:
            raise DeployerError(
                f"not healthy ({status.state}): {status.reason or 'no reason given'}"
            )
        result.url = status.url
        journal.record(target, "smoke test")
        journal.record(target, "smoke test passed", smoke_test(provider, release))
        result.outcome = "updated" if deployment.changed else "unchanged"
        result.live_version = release.version
    except DeployerError as exc:
        result.error = str(exc)
        journal.record(target, "failed", str(exc))
    finally:
        result.seconds = round(time.monotonic() - started, 2)
    return result


def undo(provider: Provider, result: TargetResult, journal: Journal) -> None:
    """Put one target back where it was before the push (or remove it if it was new)."""
    target = result.target

    def progress(message: str) -> None:
        journal.record(target, "progress", message)

    try:
        if result.previous_version:
            journal.record(target, "rollback", f"to {result.previous_version}")
            provider.rollback(progress)
            result.outcome = "rolled back"
        else:
            journal.record(target, "remove", "it had no previous version")
            provider.destroy(progress)
            result.outcome = "removed"
        result.live_version = _live_version(provider)
        journal.record(target, result.outcome, result.live_version or "nothing deployed")
    except DeployerError as exc:
        note = f"undo failed: {exc}"
        result.error = f"{result.error}; {note}" if result.error else note
        journal.record(target, "undo failed", str(exc))


def _must_undo(result: TargetResult, provider: Provider, any_failed: bool, policy: Policy) -> bool:
    """Whether the policy (or the automatic rollback of a failed target) undoes ``result``."""
    if result.ok:
        return result.changed and any_failed and policy == "rollback"
    live = _live_version(provider)
    result.live_version = live
    changed = live != result.previous_version
    if policy == "rollback":
        return changed
    return changed and result.previous_version is not None  # keep: auto-rollback only


def push_all(
    providers: dict[str, Provider],
    release: Release,
    strategy: Strategy,
    policy: Policy,
    timeout: float,
    journal: Journal,
) -> list[TargetResult]:
    """Push to every target in parallel, then apply the failure policy (also in parallel)."""
    if policy not in POLICIES:
        raise UsageError(f"unknown failure policy {policy!r}; expected rollback or keep")
    with ThreadPoolExecutor(max_workers=max(1, len(providers))) as pool:
        futures = [
            pool.submit(push_target, provider, name, release, strategy, timeout, journal)
            for name, provider in providers.items()
        ]
        results = [f.result() for f in futures]
        any_failed = any(not r.ok for r in results)

        def settle(result: TargetResult) -> None:
            provider = providers[result.target]
            if _must_undo(result, provider, any_failed, policy):
                undo(provider, result, journal)

        for _ in pool.map(settle, results):
            pass
    return results


def plan_targets(providers: dict[str, Provider], release: Release) -> list[Plan]:
    """Every target's plan, fetched in parallel (read-only)."""
    with ThreadPoolExecutor(max_workers=max(1, len(providers))) as pool:
        return list(pool.map(lambda p: p.plan(release), providers.values()))
