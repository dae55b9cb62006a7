"""The target's state read from its endpoint: live version, traffic split, replicas.

The live version is the deployed model with the most traffic; a split across several
deployed models is a rollout in progress (``updating``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from deployer.providers import Progress, Status
from deployer_gcp import names, traffic
from deployer_gcp.names import seconds
from deployer_gcp.scope import Scope


def status(scope: Scope) -> Status:
    """The target's status; ``absent`` when deployer has no endpoint for it."""
    endpoint = scope.endpoint()
    if endpoint is None:
        return Status(
            scope.target,
            "absent",
            reason=f"no Vertex AI endpoint labelled for {scope.project}/{scope.target} "
            f"in {scope.api.parent}",
        )
    return status_of(scope, endpoint)


def with_annotations(scope: Scope, current: Status) -> Status:
    """``current`` with the live version's release annotations (its Model's labels) in
    ``details["annotations"]`` ({} when there are none)."""
    found: dict[str, str] = {}
    endpoint = current.details.get("endpoint")
    live = traffic.live_deployed_model(scope.api.get_endpoint(endpoint)) if endpoint else None
    if live is not None and live.model:
        found = names.annotations_of(scope.api.get_model(live.model).labels)
    return dataclasses.replace(current, details={**current.details, "annotations": found})


def status_of(scope: Scope, endpoint: Any) -> Status:
    """The status ``endpoint`` (a Vertex Endpoint) shows."""
    target = scope.target
    url = scope.url(endpoint.name)
    models = traffic.deployed_models(endpoint)
    shares = dict(endpoint.traffic_split)
    details = {
        "endpoint": endpoint.name,
        "traffic": {dm.display_name: shares.get(dm.id, 0) for dm in models},
        "deployed_models": {dm.id: dm.display_name for dm in models},
    }
    live = traffic.live_deployed_model(endpoint)
    if live is None:
        return Status(target, "unhealthy", None, url, "the endpoint has no deployed model", details)
    version = traffic.version_of(live)
    total = sum(shares.values())
    if total != 100:
        reason = f"the endpoint's traffic split sums to {total}%, not 100%"
        return Status(target, "unhealthy", version, url, reason, details)
    state = live.status
    if state.last_update_time and state.available_replica_count == 0:
        reason = f"no replica of {version} is available: {state.message or 'no message'}"
        return Status(target, "unhealthy", version, url, reason, details)
    serving = [dm for dm in models if shares.get(dm.id, 0) > 0]
    if len(serving) > 1:
        split = ", ".join(f"{dm.display_name} {shares[dm.id]}%" for dm in serving)
        reason = f"a rollout is in progress: traffic is split ({split})"
        return Status(target, "updating", version, url, reason, details)
    return Status(target, "healthy", version, url, details=details)


def wait_healthy(scope: Scope, deadline: float, timeout: float, progress: Progress) -> Status:
    """Poll the status until it is healthy or ``deadline`` passes (the reason says so)."""
    current = status(scope)
    while not current.healthy and time.monotonic() < deadline:
        progress(f"waiting for health: {current.state}: {current.reason}")
        time.sleep(scope.options.poll_interval)
        current = status(scope)
    if current.healthy:
        return current
    reason = f"timed out after {seconds(timeout)}; last state: {current.state}: {current.reason}"
    return dataclasses.replace(current, reason=reason)


def still_serving(scope: Scope, endpoint: str) -> str:
    """``; V keeps serving (N% of traffic)``: what a failed deploy left live."""
    current = scope.api.get_endpoint(endpoint)
    live = traffic.live_deployed_model(current)
    if live is None:
        return "; nothing else is deployed on the endpoint"
    share = dict(current.traffic_split).get(live.id, 0)
    return f"; {live.display_name} keeps serving ({share}% of traffic)"


def failed(scope: Scope, reason: str, operation: str) -> Status:
    """The current status marked ``failed`` for ``reason``, naming the failed operation."""
    current = status(scope)
    details = {**current.details, "operation": operation}
    return dataclasses.replace(current, state="failed", reason=reason, details=details)
