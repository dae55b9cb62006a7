"""Starting a release on the endpoint, and rolling back to the previous deployment.

``deploy`` makes sure the endpoint exists and starts creating the new deployment (its
poller is kept on the Workspace for ``waiting``); traffic moves only once it is
provisioned and answers (promote.py). ``rollback`` puts all traffic back on the newest
other provisioned deployment (kept at 0% since the promotion).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from deployer.providers import Deployment, Progress, Release, Strategy, UsageError
from deployer_azure import capture, endpoints, names, rollout, specs
from deployer_azure.auth import azure_errors
from deployer_azure.endpoints import SUCCEEDED
from deployer_azure.status import status
from deployer_azure.workspace import Workspace


def deploy(
    ws: Workspace, release: Release, image_ref: str, strategy: Strategy, progress: Progress
) -> Deployment:
    """Create the endpoint if needed and start creating deployment ``v<version>``; no
    change when that version already serves and is healthy."""
    options = ws.options
    new = names.deployment_name(release.version)
    with azure_errors(f"deploying {new} to endpoint {ws.endpoint}", ws.scope):
        endpoint = endpoints.owned_endpoint(ws)
        deployments = endpoints.deployments(ws) if endpoint is not None else {}
        live = rollout.live_deployment(endpoints.traffic(endpoint))
        previous = endpoints.version(deployments.get(live)) if live else None
        details: dict[str, Any] = {
            "endpoint": ws.endpoint,
            "deployment": new,
            "previous_deployment": live,
            "strategy": strategy.kind,
            "percent": strategy.percent,
            "bake_seconds": strategy.bake_seconds,
            "live": asdict(strategy.live) if strategy.live is not None else None,
            "sample": release.sample,
        }
        where, problems = capture.resolve(release.capture, ws.ml.datastores)
        if problems:
            raise UsageError(f"{ws.target}: " + "; ".join(problems))
        collector = (
            capture.collector(release.capture, where, ws.endpoint, new)
            if release.capture is not None and where is not None
            else None
        )
        if previous == release.version and status(ws).healthy:
            current = deployments[str(live)]
            if capture.live_tag(current) == capture.tag(release.capture, where):
                progress(f"{ws.target}: version {release.version} is already live ({new})")
                return Deployment(ws.target, release.version, previous, False, details)
            progress(f"updating deployment {new}: {capture.describe(release.capture)}")
            wanted = capture.tag(release.capture, where)
            current.tags = {**(current.tags or {}), capture.TAG_CAPTURE: wanted}
            current.data_collector = collector
            ws.pollers[new] = ws.ml.online_deployments.begin_create_or_update(current)
            return Deployment(ws.target, release.version, previous, True, details)
        if endpoint is None:
            progress(f"creating endpoint {ws.endpoint}")
            spec = specs.endpoint_entity(options, ws.endpoint, ws.tags())
            ws.ml.online_endpoints.begin_create_or_update(spec).result()
        else:
            endpoints.make_room(ws, {new, *([live] if live else [])}, progress)
        progress(
            f"creating deployment {new} ({options.instance_count} x "
            f"{options.instance_type}) from {image_ref}"
        )
        tags = ws.tags(
            **{
                **names.annotation_tags(release.annotations),
                names.TAG_VERSION: release.version,
                names.TAG_IMAGE: image_ref[:256],
                names.TAG_CREATED: specs.now_tag(),
                capture.TAG_CAPTURE: capture.tag(release.capture, where),
            }
        )
        spec = specs.deployment_entity(options, ws.endpoint, new, image_ref, tags)
        spec.data_collector = collector
        ws.pollers[new] = ws.ml.online_deployments.begin_create_or_update(spec)
    return Deployment(ws.target, release.version, previous, True, details)


def rollback(ws: Workspace, progress: Progress) -> Deployment:
    """All traffic back to the previous deployment (kept at 0% since the promotion)."""
    with azure_errors(f"rolling back endpoint {ws.endpoint}", ws.scope):
        endpoint = endpoints.owned_endpoint(ws)
        if endpoint is None:
            raise UsageError(f"{ws.target} has nothing deployed to roll back")
        deployments = endpoints.deployments(ws)
        live = rollout.live_deployment(endpoints.traffic(endpoint))
        candidates = [
            d
            for name, d in deployments.items()
            if name != live and specs.state(d.provisioning_state).lower() == SUCCEEDED
        ]
        if not candidates:
            hint = "keep_previous: true keeps the previous deployment for rollback"
            raise UsageError(f"{ws.target} has no previous version to roll back to", hint=hint)
        target = max(candidates, key=lambda d: (d.tags or {}).get(names.TAG_CREATED, ""))
        current = endpoints.version(deployments.get(live)) if live else None
        progress(f"rolling back to {target.name} ({endpoints.version(target)})")
        endpoints.set_traffic(ws, {target.name: 100}, progress)
    details = {
        "endpoint": ws.endpoint,
        "deployment": target.name,
        "previous_deployment": live,
    }
    return Deployment(ws.target, endpoints.version(target) or "", current, True, details)
