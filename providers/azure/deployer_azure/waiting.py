"""Waiting for a deploy to settle: the new deployment's provisioning (with Azure's own
failure reason and the container's last log lines when it fails), its promotion
(promote.py), then the endpoint's health, all within one timeout.

Provisioning that does not finish before the deadline is abandoned like a failed one: the
new deployment (which never had traffic) is deleted, the previous one keeps serving, and
the Status is "failed" with the previous version.
"""

from __future__ import annotations

import time

from deployer.providers import Deployment, Progress, Status
from deployer_azure import endpoints, specs
from deployer_azure.auth import azure_errors
from deployer_azure.endpoints import FAILED_STATES, SUCCEEDED
from deployer_azure.promote import abandon, promote
from deployer_azure.status import status
from deployer_azure.workspace import Workspace

LOG_LINES = 30
# Seconds past the push timeout that deleting a deployment still provisioning may wait for
# its create to end (Azure refuses the delete meanwhile): then it is reported left over.
DELETE_GRACE = 60.0


def wait(ws: Workspace, deployment: Deployment, timeout: float, progress: Progress) -> Status:
    """Provisioning, then the strategy's traffic steps with health checks, then health."""
    deadline = time.monotonic() + timeout
    if not deployment.changed:
        return wait_healthy(ws, deadline, timeout, progress)
    new = str(deployment.details["deployment"])
    old = deployment.details.get("previous_deployment")
    old = None if old == new else old
    with azure_errors(f"waiting for deployment {new}", ws.scope):
        outcome, seen = wait_provisioned(ws, new, deadline, progress)
        if outcome == "timeout":
            problem = (
                f"timed out after {_seconds(timeout)} waiting for deployment {new} to "
                f"provision; last provisioning state: {seen}; the rollout was stopped"
            )
            progress(problem)
            return abandon(
                ws, deployment, new, problem, progress, traffic_moved=False, settle=DELETE_GRACE
            )
        if outcome == "failed":
            return abandon(ws, deployment, new, seen, progress, traffic_moved=False)
        failed = promote(ws, deployment, new, old, deadline, progress)
        if failed is not None:
            return failed
    return wait_healthy(ws, deadline, timeout, progress)


def wait_provisioned(
    ws: Workspace, name: str, deadline: float, progress: Progress
) -> tuple[str, str]:
    """("succeeded" | "failed" | "timeout", the last state or the failure reason)."""
    last = ""
    started = time.monotonic()
    while True:
        found = endpoints.deployment(ws, name)
        current = specs.state(found.provisioning_state) if found is not None else "Missing"
        if current != last:
            progress(f"deployment {name}: {current} ({time.monotonic() - started:.0f}s)")
            last = current
        if current.lower() == SUCCEEDED:
            return "succeeded", current
        if current.lower() in FAILED_STATES or found is None:
            return "failed", failure_reason(ws, name, current, deadline)
        if time.monotonic() + ws.options.poll_interval > deadline:
            return "timeout", current
        time.sleep(ws.options.poll_interval)


def failure_reason(ws: Workspace, name: str, current: str, deadline: float) -> str:
    """The provisioning error (from the LRO, when this process started it) and logs."""
    from azure.core.exceptions import HttpResponseError

    reason = f"provisioning state {current}"
    poller = ws.pollers.pop(name, None)
    if poller is not None:
        try:
            poller.result(timeout=max(1.0, min(30.0, deadline - time.monotonic())))
        except HttpResponseError as exc:
            error = getattr(exc, "error", None)
            message = getattr(error, "message", None) or exc.message or str(exc)
            code = getattr(error, "code", None)
            reason = f"{code}: {message}" if code else message
    try:
        logs = ws.ml.online_deployments.get_logs(name, ws.endpoint, lines=LOG_LINES)
    except HttpResponseError:
        logs = ""
    if logs.strip():
        reason += "\n  last log lines:\n" + "\n".join(
            f"    {line}" for line in logs.strip().splitlines()[-LOG_LINES:]
        )
    return reason


def wait_healthy(ws: Workspace, deadline: float, timeout: float, progress: Progress) -> Status:
    """Poll ``status`` until healthy or failed; unhealthy (with the last state) at the
    deadline."""
    current = status(ws)
    while not current.healthy and time.monotonic() + ws.options.poll_interval <= deadline:
        if current.state == "failed":
            return current
        time.sleep(ws.options.poll_interval)
        current = status(ws)
    if current.healthy or current.state == "failed":
        return current
    return Status(
        ws.target,
        "unhealthy",
        current.version,
        current.url,
        f"timed out after {_seconds(timeout)}; last state: {current.state} ({current.reason})",
        current.details,
    )


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"
