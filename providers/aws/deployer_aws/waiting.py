"""Endpoint states as deployer Statuses, and polling ``DescribeEndpoint`` until it settles."""

from __future__ import annotations

import time
from typing import Any

from deployer.providers import Deployment, Progress, State, Status
from deployer_aws import live_gate, names
from deployer_aws.deploy import Scope, allowance, finalize, restore_autoscaling

STATES: dict[str, State] = {
    "InService": "healthy",
    "Creating": "updating",
    "Updating": "updating",
    "SystemUpdating": "updating",
    "RollingBack": "updating",
    "Deleting": "updating",
    "OutOfService": "unhealthy",
    "Failed": "failed",
    "UpdateRollbackFailed": "failed",
}


def status(scope: Scope, url: str) -> Status:
    """The endpoint's state, live version and SageMaker's own failure reason."""
    live = scope.sm.live(scope.endpoint)
    if live is None:
        return Status(scope.target, "absent", reason=f"no SageMaker endpoint {scope.endpoint}")
    state = STATES.get(live.status, "unhealthy")
    details: dict[str, Any] = {
        "endpoint": scope.endpoint,
        "endpoint_status": live.status,
        "endpoint_config": live.config,
        "previous_config": live.previous_config,
        "region": scope.options.region,
        "annotations": names.annotations_of(live.config_tags),
    }
    reason = None
    if state == "healthy":
        if live.failure_reason:
            details["last_update_failure"] = live.failure_reason
    elif state == "failed":
        reason = f"endpoint {scope.endpoint} is {live.status}: {live.failure_reason or 'no reason'}"
    else:
        reason = f"endpoint {scope.endpoint} is {live.status}"
        if live.failure_reason:
            reason += f" ({live.failure_reason})"
    return Status(scope.target, state, live.version, url, reason, details)


def wait(
    scope: Scope, deployment: Deployment, timeout: float, url: str, progress: Progress
) -> Status:
    """Poll until the endpoint serves ``deployment`` (healthy), fails, or ``timeout`` passes."""
    if not deployment.changed:
        return status(scope, url)
    sm = scope.sm
    config = deployment.details.get("endpoint_config")
    started = time.monotonic()
    settle = _sagemaker_deadline(scope, deployment, started)
    last = ""
    announced = False
    while True:
        described = sm.describe_endpoint(scope.endpoint)
        elapsed = time.monotonic() - started
        if described is None:
            return Status(
                scope.target,
                "failed",
                reason=f"endpoint {scope.endpoint} disappeared while waiting (deleted?)",
            )
        state = described.get("EndpointStatus", "")
        reason = described.get("FailureReason") or ""
        if state != last:
            progress(f"endpoint {scope.endpoint}: {state} ({elapsed:.0f}s)")
            if state == "RollingBack":
                progress(f"SageMaker is rolling back the update: {reason or 'no reason given'}")
            last = state
        if state == "InService":
            if described.get("EndpointConfigName") == config:
                live = sm.live(scope.endpoint)
                if live is not None:
                    finalize(scope, deployment, live, progress)
                _report_pass(deployment, progress)
                return status(scope, url)
            restore_autoscaling(scope, progress)
            return _rolled_back(scope, deployment, reason, url)
        if state in ("Failed", "UpdateRollbackFailed", "OutOfService"):
            return _failed(scope, deployment, state, reason, url)
        if elapsed >= timeout and settle is not None and time.monotonic() < settle:
            if not announced:
                progress(
                    f"the {timeout:g}s limit passed while endpoint {scope.endpoint} is {state}; "
                    "SageMaker cannot stop an update, but rolls it back once its "
                    "MaximumExecutionTimeoutInSeconds passes: waiting for that so the "
                    "endpoint ends at a known version"
                )
                announced = True
        elif elapsed >= timeout:
            return Status(
                scope.target,
                "updating",
                deployment.previous_version,
                url,
                f"timed out after {elapsed:.0f}s (limit {timeout:g}s) waiting for endpoint "
                f"{scope.endpoint} to serve {deployment.version}; last state: {state}"
                + (f" ({reason})" if reason else ""),
                {"endpoint": scope.endpoint, "endpoint_status": state},
            )
        time.sleep(min(scope.options.poll_interval, max(timeout - elapsed, 0.01)))


def _sagemaker_deadline(scope: Scope, deployment: Deployment, started: float) -> float | None:
    """When SageMaker will have ended the update by itself (monotonic), if it is bounded."""
    config = deployment.details.get("deployment_config") or {}
    limit = (config.get("BlueGreenUpdatePolicy") or {}).get("MaximumExecutionTimeoutInSeconds")
    began = deployment.details.get("update_started_at")
    if not limit or not isinstance(began, (int, float)):
        return None
    # its own rollback takes about one more provisioning step
    return started + (began + limit - time.time()) + allowance(scope.options)


def _report_pass(deployment: Deployment, progress: Progress) -> None:
    alarms = deployment.details.get("live_alarms")
    if alarms:
        progress(f"live gate: pass ({', '.join(alarms)} did not fire while the update baked)")


def _rolled_back(scope: Scope, deployment: Deployment, reason: str, url: str) -> Status:
    """InService on another config: the update failed and the old fleet kept serving."""
    serving = deployment.previous_version or "the previous version"
    alarms = deployment.details.get("live_alarms") or []
    fired = live_gate.fired(scope.aws, alarms, reason) if alarms else None
    if fired is not None:
        alarm, why = fired
        verdict = live_gate.verdict(alarm, why, deployment.details.get("live_baseline"))
        text = f"live gate: {verdict.reason}; rolled back: {serving} keeps serving"
        gate = {**verdict.to_dict(), "alarm": alarm}
        threshold = (deployment.details.get("live_thresholds") or {}).get(alarm)
        if threshold is not None:
            gate["threshold"] = threshold
        details: dict[str, Any] = {
            "endpoint": scope.endpoint,
            "endpoint_status": "InService",
            "rolled_back": True,
            "failure_reason": reason,
            "live_gate": gate,
        }
        return Status(scope.target, "failed", deployment.previous_version, url, text, details)
    text = (
        f"the update of endpoint {scope.endpoint} to {deployment.version} failed: "
        f"{reason or 'SageMaker gave no FailureReason'}; SageMaker rolled back automatically "
        f"and {serving} keeps serving"
    )
    details = {"endpoint": scope.endpoint, "endpoint_status": "InService", "rolled_back": True}
    return Status(scope.target, "failed", deployment.previous_version, url, text, details)


def _failed(scope: Scope, deployment: Deployment, state: str, reason: str, url: str) -> Status:
    reason = reason or "SageMaker gave no FailureReason"
    if state == "UpdateRollbackFailed":
        text = (
            f"the update of endpoint {scope.endpoint} to {deployment.version} failed and "
            f"SageMaker's automatic rollback failed too: {reason}"
        )
    elif state == "OutOfService":
        text = f"endpoint {scope.endpoint} is OutOfService: {reason}"
    else:
        text = f"endpoint {scope.endpoint} failed to deploy {deployment.version}: {reason}"
    details = {"endpoint": scope.endpoint, "endpoint_status": state}
    return Status(scope.target, "failed", None, url, text, details)
