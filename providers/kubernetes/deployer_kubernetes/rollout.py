"""Rollout status the way ``kubectl rollout status`` decides it, and failure diagnosis from
the pods' container statuses, conditions, events and last log lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployer_kubernetes.cluster import Cluster

# Waiting reasons that do not resolve by themselves: fail at once when fail_fast is on.
HARD_WAITING = {
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
LOG_LINES = 20


@dataclass(frozen=True)
class RolloutState:
    """One look at a Deployment: done, failed (progress deadline) or still waiting."""

    done: bool
    failed: bool
    message: str
    available: int = 0
    replicas: int = 0


def rollout_status(deployment: dict[str, Any]) -> RolloutState:
    """kubectl's DeploymentStatusViewer: generation observed, every replica updated, no old
    replica left, every updated replica available; ProgressDeadlineExceeded fails."""
    meta, spec = deployment["metadata"], deployment.get("spec", {})
    status = deployment.get("status") or {}
    name = meta["name"]
    desired = spec.get("replicas")
    updated = status.get("updatedReplicas") or 0
    total = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if meta.get("generation", 0) > (status.get("observedGeneration") or 0):
        return RolloutState(False, False, "Waiting for deployment spec update to be observed...")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == (
            "ProgressDeadlineExceeded"
        ):
            detail = condition.get("message") or ""
            return RolloutState(
                False,
                True,
                f'deployment "{name}" exceeded its progress deadline '
                f"(ProgressDeadlineExceeded: {detail})".replace(": )", ")"),
                available,
                total,
            )
    if desired is not None and updated < desired:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{updated} out of {desired} new replicas have been updated..."
        )
    elif total > updated:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{total - updated} old replicas are pending termination..."
        )
    elif available < updated:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{available} of {updated} updated replicas are available..."
        )
    else:
        return RolloutState(
            True, False, f'deployment "{name}" successfully rolled out', available, total
        )
    return RolloutState(False, False, message, available, total)


@dataclass(frozen=True)
class Diagnosis:
    """Why the new pods are not becoming ready; ``hard`` when waiting will not help."""

    text: str
    hard: bool


def diagnose(cluster: Cluster, selector: str) -> Diagnosis | None:
    """Look at the pods ``selector`` finds; None when nothing looks wrong."""
    findings: list[str] = []
    hard = False
    seen: set[str] = set()
    for pod in cluster.pods(selector):
        finding, is_hard = _pod_problem(cluster, pod)
        if finding and finding not in seen:
            seen.add(finding)
            findings.append(finding)
            hard = hard or is_hard
        if len(findings) >= 3:
            break
    if not findings:
        return None
    return Diagnosis("; ".join(findings), hard)


def _pod_problem(cluster: Cluster, pod: dict[str, Any]) -> tuple[str | None, bool]:
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            message = condition.get("message") or _last_warning(cluster, name, "FailedScheduling")
            return f"pod {name} is Unschedulable: {message}", False
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in HARD_WAITING:
            continue
        if reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"):
            detail = _last_warning(cluster, name, "Failed") or waiting.get("message", "")
            return f"pod {name}: {reason}: {detail}", True
        if reason == "CrashLoopBackOff":
            return _crash(cluster, name, container), True
        return f"pod {name}: {reason}: {waiting.get('message', '')}", True
    return None, False


def _crash(cluster: Cluster, pod: str, container: dict[str, Any]) -> str:
    terminated = (container.get("lastState") or {}).get("terminated") or {}
    exit_code = terminated.get("exitCode")
    why = f"exit code {exit_code}" if exit_code is not None else "crashed"
    if terminated.get("reason"):
        why += f", {terminated['reason']}"
    restarts = container.get("restartCount", 0)
    text = f"pod {pod}: CrashLoopBackOff ({why}; {restarts} restarts)"
    try:
        logs = cluster.pod_log(pod, container["name"], previous=True, tail=LOG_LINES)
    except Exception as exc:  # logs are a bonus; the reason above stands on its own
        return f"{text}; its logs could not be read: {exc}"
    lines = [line for line in logs.splitlines() if line.strip()]
    if not lines:
        return f"{text}; the container wrote no log lines"
    return f"{text}; last log lines:\n" + "\n".join(f"    {line}" for line in lines[-LOG_LINES:])


def _last_warning(cluster: Cluster, pod: str, reason: str) -> str:
    """The newest Warning event of ``reason`` about ``pod`` (its message), or ''."""
    events = [
        e
        for e in cluster.events("Pod", pod)
        if e.get("type") == "Warning" and e.get("reason") == reason
    ]
    if not events:
        return ""
    events.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return str(events[-1].get("message") or "")
