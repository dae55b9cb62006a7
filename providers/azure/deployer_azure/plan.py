"""What a push would change on this target's endpoint, from read-only calls."""

from __future__ import annotations

from deployer.providers import Change, Plan, Release
from deployer_azure import capture, endpoints, gpu, names, rollout
from deployer_azure.auth import azure_errors
from deployer_azure.workspace import Workspace


def plan(ws: Workspace, release: Release) -> Plan:
    """The endpoint to create, the deployment to create (or keep), the traffic move and
    the deployments a successful push deletes."""
    options = ws.options
    new = names.deployment_name(release.version)
    changes: list[Change] = []
    notes = gpu.notes(ws.target, options.instance_type, release)
    with azure_errors("planning", ws.scope):
        endpoint = endpoints.owned_endpoint(ws)
        deployments = endpoints.deployments(ws) if endpoint is not None else {}
        where, problems = capture.resolve(release.capture, ws.ml.datastores)
    live = rollout.live_deployment(endpoints.traffic(endpoint))
    live_version = endpoints.version(deployments.get(live)) if live else None
    image = f"image {release.image.ref}, {options.instance_count} x {options.instance_type}"
    if endpoint is None:
        changes.append(Change("create", f"endpoint {ws.endpoint}", f"auth {options.auth_mode}"))
    wanted = capture.tag(release.capture, where)
    if live_version == release.version:
        if problems or capture.live_tag(deployments.get(live or "")) == wanted:
            changes.append(Change("keep", f"deployment {new}", "already serving this version"))
        else:
            changes.append(Change("update", f"deployment {new}", capture.describe(release.capture)))
        return Plan(ws.target, changes, problems, notes)
    if release.capture is not None:
        image += f"; {capture.describe(release.capture)}"
    changes.append(Change("create", f"deployment {new}", image))
    changes.append(
        Change(
            "update",
            f"endpoint {ws.endpoint}",
            f"traffic {live or 'none'} -> {new}" + (f" ({live_version})" if live else ""),
        )
    )
    keep = {new, live} if options.keep_previous else {new}
    for name in deployments:
        if name not in keep and name != live:
            changes.append(Change("delete", f"deployment {name}", "no longer needed"))
    if live and not options.keep_previous:
        changes.append(Change("delete", f"deployment {live}", "keep_previous is false"))
    return Plan(ws.target, changes, problems, notes)
