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
A target whose platform rolled the update back by itself (``wait`` returns a Status with
``details["rolled_back"]``) is journalled "rolled back by the cloud" with the version
live, reported "rolled back", and not rolled back again.
Every step lands in the journal, so the summary says exactly what changed, what was
rolled back and what is left.

``push_release`` is the whole of a push as ``Project.push`` runs it: build the release once,
push, time it, assemble the result, write the journal file and, when every target
succeeded, router.yaml. ``destroy_targets`` is the whole of a destroy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import orjson

from deployer import router_update
from deployer.errors import DeployerError, UsageError
from deployer.journal import Event, Journal, JournalEntry, write_journal
from deployer.providers import (
    Plan,
    Progress,
    Provider,
    Release,
    Status,
    Strategy,
    plan_of,
    rollout_allowance,
)
from deployer.results import POLICIES, DestroyResult, Outcome, Policy, PushResult, TargetResult

__all__ = [  # the results and the journal are also reachable from here, where push lives
    "CLOUD_ROLLED_BACK",
    "POLICIES",
    "DestroyResult",
    "Event",
    "Journal",
    "JournalEntry",
    "Outcome",
    "Policy",
    "PushResult",
    "TargetResult",
    "destroy_targets",
    "plan_dicts",
    "plan_targets",
    "push_all",
    "push_options",
    "push_release",
    "push_target",
    "push_timeouts",
    "smoke_test",
    "undo",
]


class Recorder(Protocol):
    """What records a push (the audit trail, ``deployer.audit.AuditTrail``): ``start``
    before any target changes (it may annotate the release), ``finish`` with the result."""

    def start(self, release: Release, targets: list[str], strategy: str) -> Release: ...

    def finish(self, result: PushResult) -> None: ...


CLOUD_ROLLED_BACK = "rolled back by the cloud"  # the journal step: the platform's own rollback


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
        if not status.healthy and status.details.get("rolled_back"):
            _rolled_back_by_cloud(result, status, journal)
            return result
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


def _rolled_back_by_cloud(result: TargetResult, status: Status, journal: Journal) -> None:
    """The platform itself put the target back (``details["rolled_back"]``): the push
    failed there, and the version ``status`` names is live, with nothing left to undo
    (``_must_undo`` checks that against the live version)."""
    target = result.target
    result.error = f"not healthy ({status.state}): {status.reason or 'no reason given'}"
    journal.record(target, "failed", result.error)
    result.outcome = "rolled back"
    result.live_version, result.url = status.version, status.url
    journal.record(target, CLOUD_ROLLED_BACK, status.version or "nothing deployed")


def undo(provider: Provider, result: TargetResult, journal: Journal) -> None:
    """Put one target back where it was before the push (or remove it if it was new)."""
    target = result.target

    def progress(message: str) -> None:
        journal.record(target, "progress", message)

    try:
        if result.previous_version:
            journal.record(target, "rollback", f"to {result.previous_version}")
            provider.rollback(progress)
            outcome: Outcome = "rolled back"
        else:
            journal.record(target, "remove", "it had no previous version")
            provider.destroy(progress)
            outcome = "removed"
        result.live_version = _live_version(provider)
        if result.live_version != result.previous_version:  # say what is, not what was meant
            raise DeployerError(
                f"{outcome} did not restore {result.previous_version or 'nothing deployed'}: "
                f"{result.live_version or 'nothing'} is live"
            )
        result.outcome = outcome
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
    if result.outcome == "rolled back" and changed:  # the cloud said so; what is live wins
        result.outcome = "failed"
    if policy == "rollback":
        return changed
    return changed and result.previous_version is not None  # keep: auto-rollback only


def push_timeouts(
    providers: Mapping[str, Provider], strategy: Strategy, timeout: float | None = None
) -> dict[str, float]:
    """Each target's push timeout: the time ``strategy`` needs on it (its steps times the
    bake plus the provider's ``rollout_allowance_seconds``), or ``timeout`` when given.

    A ``timeout`` that does not leave time beyond the bakes alone (steps x bake, which no
    provider can shorten) is a UsageError naming both numbers and the derived timeout:
    the rollout would be cut off half-done.
    """
    needs = {name: strategy.rollout_seconds(rollout_allowance(p)) for name, p in providers.items()}
    if timeout is None:
        return needs
    baking = strategy.steps * strategy.bake_seconds
    if timeout <= baking or timeout <= 0:
        derived = max(needs.values(), default=baking)
        raise UsageError(
            f"--timeout {timeout:g} s is too short for {strategy} with --bake "
            f"{strategy.bake_seconds:g}: its {strategy.steps} step(s) bake for {baking:g} s "
            f"before any provisioning; give more than {baking:g} s, or no --timeout "
            f"(derived: {derived:g} s)"
        )
    return {name: timeout for name in providers}


def push_all(
    providers: dict[str, Provider],
    release: Release,
    strategy: Strategy,
    policy: Policy,
    timeout: float | Mapping[str, float],
    journal: Journal,
) -> list[TargetResult]:
    """Push to every target in parallel, then apply the failure policy (also in parallel).
    ``timeout``: one for every target, or each target's (see ``push_timeouts``)."""
    if policy not in POLICIES:
        raise UsageError(f"unknown failure policy {policy!r}; expected rollback or keep")
    timeouts = timeout if isinstance(timeout, Mapping) else dict.fromkeys(providers, timeout)
    with ThreadPoolExecutor(max_workers=max(1, len(providers))) as pool:
        futures = [
            pool.submit(push_target, provider, name, release, strategy, timeouts[name], journal)
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


def plan_targets(
    providers: dict[str, Provider], release: Release, strategy: Strategy | None = None
) -> list[Plan]:
    """Every target's plan for ``strategy``, fetched in parallel (read-only). Each lists
    in ``problems`` what its target would refuse (see ``providers.plan_of``)."""
    with ThreadPoolExecutor(max_workers=max(1, len(providers))) as pool:
        return list(pool.map(lambda p: plan_of(p, release, strategy), providers.values()))


def refuse_unfit_strategy(
    providers: dict[str, Provider], release: Release, strategy: Strategy
) -> None:
    """Before anything changes: a UsageError naming each target whose plan says it would
    refuse ``strategy`` (e.g. a SageMaker canary one instance cannot hold), so a push
    never deploys to some targets only to roll them back when another refuses. All at
    once fits every target; a plan that cannot be fetched is left to the push to report."""
    if strategy.kind == "all-at-once":
        return

    def problems_of(item: tuple[str, Provider]) -> list[str]:
        name, provider = item
        try:
            return [f"{name}: {p}" for p in plan_of(provider, release, strategy).problems]
        except DeployerError:
            return []

    with ThreadPoolExecutor(max_workers=max(1, len(providers))) as pool:
        problems = [p for found in pool.map(problems_of, providers.items()) for p in found]
    if problems:
        raise UsageError(
            f"{len(problems)} problem(s) with {strategy}; nothing was changed:\n  "
            + "\n  ".join(problems),
            hint="`deployer plan --strategy ...` shows what each target accepts",
        )


def plan_dicts(
    plans: list[Plan], strategy: Strategy, timeouts: Mapping[str, float]
) -> list[dict[str, Any]]:
    """The plans as ``plan`` and ``push --dry-run`` show them: each with the strategy and
    the push timeout it gets (``timeout_seconds``)."""
    return [
        {**p.to_dict(), "strategy": str(strategy), "timeout_seconds": timeouts.get(p.target)}
        for p in plans
    ]


def push_options(strategy: str, bake_seconds: float, on_failure: str) -> tuple[Strategy, Policy]:
    """Check a push's options before anything runs: the parsed strategy and the policy."""
    if on_failure not in POLICIES:
        raise UsageError(f"unknown --on-failure {on_failure!r}; expected rollback or keep")
    return Strategy.parse(strategy, bake_seconds), on_failure


def push_release(
    project: str,
    providers: dict[str, Provider],
    make_release: Callable[[], Release],
    *,
    strategy: Strategy,
    policy: Policy,
    dry_run: bool = False,
    timeout: float | None = None,
    events: Event | None = None,
    journal_dir: Path | None = None,
    router_file: Path | None = None,
    target_options: Mapping[str, dict[str, Any]] | None = None,
    recorder: Recorder | None = None,
    after_push: Callable[[dict[str, Provider], list[TargetResult], Journal], None] | None = None,
) -> PushResult:
    """Make the release once (the build), then push it to every target.

    ``timeout`` (None: each target's derived one) is checked before the build (see
    ``push_timeouts``). A dry run only fetches each target's plan. Otherwise the result,
    timed from the start of the build, is also written to ``journal_dir`` (None to
    skip); when every target succeeded, ``router_file`` (None to skip) gets the pushed
    targets' backends, configured with ``target_options`` (each target's deployer.yaml
    options). ``recorder`` (None: none) records the push once nothing can refuse it any
    more, before any target changes, and its result after the journal is written.
    ``after_push`` (None: nothing) journals more steps once the targets are pushed
    (``monitoring.alerts.apply``: deployer.alerting.apply).
    """
    started = time.monotonic()
    timeouts = push_timeouts(providers, strategy, timeout)
    release = make_release()
    result = PushResult(
        project, release.version, release.image.to_dict(), [], policy, str(strategy)
    )
    if dry_run:
        result.dry_run = True
        result.plans = plan_dicts(plan_targets(providers, release, strategy), strategy, timeouts)
        return result
    refuse_unfit_strategy(providers, release, strategy)
    if recorder is not None:
        release = recorder.start(release, list(providers), str(strategy))
    journal = Journal(events)
    result.targets = push_all(providers, release, strategy, policy, timeouts, journal)
    if after_push is not None:
        after_push(providers, result.targets, journal)
    result.journal = journal.entries
    result.seconds = round(time.monotonic() - started, 2)
    if journal_dir is not None:
        write_journal(journal_dir, result.version, result.to_dict())
    if recorder is not None:
        recorder.finish(result)
    if router_file is not None and result.ok:
        options = target_options or {}
        written = router_update.add_pushed(
            project, providers, {n: options.get(n, {}) for n in providers}, router_file
        )
        result.router_manifest = str(written)
    return result


def destroy_targets(
    providers: dict[str, Provider],
    kinds: Mapping[str, str],
    router_file: Path | None,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> DestroyResult:
    """Destroy every target, then take their backends out of ``router_file`` (None to
    skip; ``kinds`` maps each target to its provider, as router.yaml names it).

    An invalid router.yaml fails before anything is removed; a failed target leaves it as
    it was. ``dry_run`` removes nothing and says which backends would leave it.
    """
    routed = router_update.routed(kinds, router_file)
    changed = str(router_file) if router_file is not None and routed else None
    if dry_run:
        return DestroyResult({name: [] for name in providers}, changed, routed, dry_run=True)
    say = progress or (lambda _line: None)
    removed = {name: provider.destroy(say) for name, provider in providers.items()}
    if routed and router_file is not None:
        routed = router_update.remove(routed, router_file)
        if routed:
            say(f"removed {', '.join(routed)} from {router_file}")
    changed = str(router_file) if router_file is not None and routed else None
    return DestroyResult(removed, changed, routed)
