"""Promoting a provisioned deployment: a smoke prediction, then the strategy's traffic
steps (rollout.py) with a bake and a check after each one but the last; on a failed
check all traffic goes back to the previous deployment and the new one is deleted.

Every step must fit before the deadline with its whole bake: a step that would not
(or any step once the deadline has passed) is never applied. The rollout stops there,
traffic goes back to the previous deployment, the new one is deleted, and the Status
says so: a timeout never promotes an unbaked version.

With live gates (``Strategy.live``, ``release.live``) each bake compares the new
deployment with the old on Azure Monitor's metrics (monitor.py) every
``interval_seconds``; a failing verdict undoes the step like a failed check and the
Status names the verdict (``details["live_gate"]``, ``details["rolled_back"]``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from deployer.providers import DeployerError, Deployment, Progress, Status, Strategy, live
from deployer_azure import endpoints, monitor, rollout, specs
from deployer_azure.endpoints import SUCCEEDED
from deployer_azure.invoke import invoke
from deployer_azure.workspace import Workspace

# how a bake waits and tells time (tests move virtual time through them)
bake_sleep: Callable[[float], None] = time.sleep
bake_clock: Callable[[], float] = time.monotonic
bake_now: Callable[[], dt.datetime] = monitor.utc_now  # the metrics' window ends now


def promote(
    ws: Workspace,
    deployment: Deployment,
    new: str,
    old: str | None,
    deadline: float,
    progress: Progress,
) -> Status | None:
    """Move all traffic to ``new`` and retire what is no longer kept; None when done, the
    failed Status (after ``abandon``) when a check fails."""
    details = deployment.details
    rules = live.LiveRules(**details["live"]) if details.get("live") else None
    strategy = Strategy(
        details["strategy"], details["percent"], details["bake_seconds"], live=rules
    )
    problem = check(ws, new, details.get("sample"))
    if problem:
        return abandon(ws, deployment, new, problem, progress, traffic_moved=False)
    steps = rollout.traffic_steps(strategy, new, old)
    for index, traffic in enumerate(steps):
        last = index == len(steps) - 1
        bake = 0.0 if last else strategy.bake_seconds
        left = deadline - time.monotonic()
        if left < bake or left <= 0:
            problem = (
                f"timed out: {max(0.0, left):.0f}s left before the step to "
                f"{rollout.describe(traffic)}"
                + (f", which bakes {bake:.0f}s" if bake else "")
                + "; the rollout was stopped"
            )
            progress(problem)
            return abandon(ws, deployment, new, problem, progress, traffic_moved=index > 0, old=old)
        endpoints.set_traffic(ws, traffic, progress)
        if last:
            break
        if bake:
            progress(f"baking {bake:.0f}s at {traffic[new]}% on {new}")
            try:
                bake_step(ws, new, old, bake, strategy.live, progress)
            except live.LiveGateFailed as failed:
                return gate_failed(ws, deployment, new, old, failed.verdict, progress)
            except DeployerError as unreadable:  # e.g. no permission to read the metrics
                problem = f"live gate: the signals could not be read: {unreadable}"
                return abandon(ws, deployment, new, problem, progress, traffic_moved=True, old=old)
        problem = check(ws, new, details.get("sample"))
        if problem:
            return abandon(ws, deployment, new, problem, progress, traffic_moved=True, old=old)
    keep = {new, old} if (old and ws.options.keep_previous) else {new}
    endpoints.retire(ws, {n for n in keep if n}, progress)
    return None


def bake_step(
    ws: Workspace,
    new: str,
    old: str | None,
    seconds: float,
    rules: live.LiveRules | None,
    progress: Progress,
) -> None:
    """Wait ``seconds``; with ``rules`` (and an old deployment to compare with), compare
    the two on Azure Monitor every ``interval_seconds``, each verdict in the progress.
    Raises LiveGateFailed on a failing verdict."""
    if rules is None or old is None:
        bake_sleep(seconds)
        return
    reader = monitor.SignalReader(ws, new, old, now=bake_now)
    baker = live.Baker(rules, sleep=bake_sleep, clock=bake_clock)
    reported = 0

    def report() -> None:  # the verdicts so far, one progress line each
        nonlocal reported
        for verdict in baker.verdicts[reported:]:
            progress(f"live gate: {verdict.outcome} ({verdict.reason})")
        reported = len(baker.verdicts)

    def read() -> tuple[live.Signals | None, live.Signals]:
        report()
        return reader.read()

    try:
        baker.bake(seconds, read)
    finally:
        report()


def gate_failed(
    ws: Workspace,
    deployment: Deployment,
    new: str,
    old: str | None,
    verdict: live.Verdict,
    progress: Progress,
) -> Status:
    """Undo the step the live gate failed (traffic back to ``old``, ``new`` deleted)."""
    deleted = undo(ws, deployment, new, progress, traffic_moved=True, old=old, settle=0.0)[-1]
    previous = deployment.previous_version
    reason = f"live gate: {verdict.reason}; rolled back: {previous} ({old}) keeps serving"
    details = {"rolled_back": True, "live_gate": verdict.to_dict(), "deployment": new}
    return Status(ws.target, "failed", previous, reason=f"{reason}; {deleted}", details=details)


def check(ws: Workspace, name: str, sample: Any) -> str | None:
    """None if ``name`` is provisioned and answers a prediction; else what is wrong."""
    found = endpoints.deployment(ws, name)
    current = specs.state(found.provisioning_state) if found is not None else "Missing"
    if current.lower() != SUCCEEDED:
        return f"deployment {name} is {current}"
    body = json.dumps(sample if sample is not None else [[0]]).encode()
    answer = invoke(ws, body, "application/json", "application/json", deployment=name)
    if answer.status != 200:
        text = answer.body[:300].decode(errors="replace")
        return f"a smoke prediction on {name} answered {answer.status}: {text}"
    try:
        json.loads(answer.body)["predictions"]
    except (ValueError, KeyError, TypeError):
        return f"a smoke prediction on {name} returned {answer.body[:200]!r}"
    return None


def abandon(
    ws: Workspace,
    deployment: Deployment,
    new: str,
    problem: str,
    progress: Progress,
    *,
    traffic_moved: bool,
    old: str | None = None,
    settle: float = 0.0,
) -> Status:
    """Put all traffic back on ``old`` (if it had moved), delete ``new``, say so.
    ``settle``: how long the delete may wait for an operation still running on ``new``
    (see ``endpoints.delete_deployment``)."""
    actions = undo(
        ws, deployment, new, progress, traffic_moved=traffic_moved, old=old, settle=settle
    )
    head, _, tail = problem.partition("\n")
    reason = f"deployment {new} (version {deployment.version}) failed: {head}"
    reason += f"; {'; '.join(actions)}" + (f"\n{tail}" if tail else "")
    return Status(ws.target, "failed", deployment.previous_version, reason=reason)


def undo(
    ws: Workspace,
    deployment: Deployment,
    new: str,
    progress: Progress,
    *,
    traffic_moved: bool,
    old: str | None,
    settle: float,
) -> list[str]:
    """Traffic back on ``old`` (if it had moved), ``new`` deleted: what was done, the
    deletion's outcome last."""
    previous = deployment.previous_version
    actions = []
    if traffic_moved and old:
        endpoints.set_traffic(ws, {old: 100}, progress)
        actions.append(f"rolled back: traffic 100% to {old} ({previous})")
    elif previous:
        actions.append(f"the previous version {previous} keeps serving")
    else:
        actions.append("nothing was serving before")
    failed_delete = endpoints.delete_deployment(ws, new, progress, settle=settle)
    actions.append(
        f"deployment {new} deleted"
        if failed_delete is None
        else f"deployment {new} could not be deleted ({failed_delete}): it gets no traffic, "
        "and the next push or `deployer destroy` removes it"
    )
    return actions
