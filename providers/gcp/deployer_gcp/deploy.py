"""Start a deploy: the endpoint (created once), the version's Model, the DeployModel call.

``deploy`` uploads the model (or reuses it) and starts the DeployModel operation with the
strategy's first traffic split; the Deployment's details carry what ``wait`` needs to
follow the operation and the remaining steps (see deployer_gcp.waiting).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from deployer.providers import Deployment, Progress, Release, Strategy
from deployer_gcp import capture, models, traffic
from deployer_gcp.scope import Scope
from deployer_gcp.status import status_of


def deploy(
    scope: Scope, release: Release, image_ref: str, strategy: Strategy, progress: Progress
) -> Deployment:
    """Start deploying ``release`` (image ``image_ref``); unchanged when already live."""
    scope.say = progress
    target, version = scope.target, release.version
    capture.check(scope, release)
    endpoint = ensure_endpoint(scope, progress, release)
    # the logging follows the release even when its version is already live (changed
    # stays False then: a failed push elsewhere must not roll this version back for it)
    logging_updated = capture.apply(scope, endpoint, release, progress)
    live = traffic.live_deployed_model(endpoint)
    previous = traffic.version_of(live)
    details: dict[str, Any] = {"endpoint": endpoint.name, "strategy": str(strategy)}
    if logging_updated:
        details["logging"] = capture.describe(scope, release)
    only_live = previous == version and len(endpoint.deployed_models) == 1
    if only_live and status_of(scope, endpoint).healthy:
        progress(f"{target}: version {version} is already live")
        return Deployment(target, version, previous, False, details)
    shares = traffic.steps(strategy) if live is not None else [100]
    if live is None and strategy.kind != "all-at-once":
        progress(f"nothing is live yet: {strategy} deploys {version} with all traffic")
    details.update(
        shares=shares,
        bake_seconds=strategy.bake_seconds,
        sample=release.sample,
        previous_deployed_model=live.id if live is not None else None,
    )
    if strategy.live is not None:
        details["live"] = asdict(strategy.live)  # the live gates of each step's bake
    existing = traffic.find_version(endpoint, version)
    if existing is not None:
        # Left over from an unfinished rollout: move traffic to it instead of redeploying.
        progress(f"{version} is already deployed ({existing.id}); resuming its rollout")
        if existing.id == details["previous_deployed_model"]:
            details["previous_deployed_model"] = None
            details["shares"] = [100]
        details["deployed_model"] = existing.id
        return Deployment(target, version, previous, True, details)
    model = models.ensure_model(scope, release, image_ref, progress)
    others = [dm.id for dm in endpoint.deployed_models]
    split = traffic.split(traffic.NEW, shares[0], details["previous_deployed_model"], others)
    progress(f"deploying {version} to {endpoint.display_name} with traffic split {split}")
    details["operation"] = scope.api.deploy_model(
        endpoint.name, models.deployed_model(scope, model, version), split
    )
    return Deployment(target, version, previous, True, details)


def ensure_endpoint(scope: Scope, progress: Progress, release: Release | None = None) -> Any:
    """The target's endpoint, created (and waited for) when it does not exist yet, with
    ``release``'s request-response logging."""
    endpoint = scope.endpoint()
    if endpoint is not None:
        return endpoint
    api = scope.api
    display = scope.display()
    progress(f"creating endpoint {display} in {api.parent}")
    logging = capture.config(scope, release) if release and release.capture else None
    operation = api.create_endpoint(display, scope.owner, logging)
    created = api.wait_operation(
        operation, f"creating endpoint {display}", scope.deadline(), progress, api.types.Endpoint
    )
    return api.get_endpoint(created.name)
