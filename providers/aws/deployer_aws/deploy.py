"""Create, update, roll back and remove one target's SageMaker endpoint.

The cloud is the source of truth: the live version is the ``deployer-version`` tag of the
endpoint's current config; the config to roll back to is named by the endpoint's
``deployer-previous-config`` tag, written once an update has succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deployer.providers import (
    Change,
    DeployerError,
    Deployment,
    Progress,
    Strategy,
    UsageError,
    monitoring,
)
from deployer_aws import autoscaling, capture, live_gate, names
from deployer_aws.aws import AccessDenied, Aws
from deployer_aws.options import SageMakerOptions
from deployer_aws.sagemaker import (
    BUSY,
    MAX_ALARMS,
    Desired,
    Live,
    SageMaker,
    deployment_config,
    desired,
)

# Every version string the core makes has this length (12 hex, '-', 8 hex).
VERSION_LENGTH = 21


@dataclass(frozen=True)
class Scope:
    """One target of one project: its options, clients and endpoint name."""

    aws: Aws
    options: SageMakerOptions
    project: str
    target: str
    endpoint: str
    repository: str

    @property
    def sm(self) -> SageMaker:
        return SageMaker(self.aws)

    @property
    def prefix(self) -> str:
        """The name prefix of every model and endpoint config of this target."""
        return names.resource_prefix(self.endpoint, "0" * VERSION_LENGTH)

    def tags(self, version: str | None = None) -> list[dict[str, str]]:
        return names.tags(self.project, self.target, version)


def check_owned(scope: Scope, live: Live | None) -> None:
    """Refuse to touch an endpoint deployer did not create for this project and target."""
    if live is None:
        return
    project = live.tags.get(names.TAG_PROJECT)
    target = live.tags.get(names.TAG_TARGET)
    if (project, target) != (scope.project, scope.target):
        owner = f"project {project!r}, target {target!r}" if project else "no deployer tags"
        raise UsageError(
            f"SageMaker endpoint {scope.endpoint} exists but was not created by deployer for "
            f"project {scope.project!r}, target {scope.target!r} ({owner})",
            hint=f"set targets.{scope.target}.endpoint_name to another name",
        )


def plan(
    scope: Scope,
    version: str,
    image_ref: str,
    strategy: Strategy | None = None,
    spec: monitoring.CaptureSpec | None = None,
) -> tuple[list[Change], list[str]]:
    """What ``deploy`` would do, from read-only calls: the changes, and why it would
    refuse ``strategy`` (None: not checked) or the capture ``spec``, each problem naming
    the endpoint or the setting."""
    want = _desired(scope, version, image_ref, spec)
    live = scope.sm.live(scope.endpoint)
    check_owned(scope, live)
    changes: list[Change] = []
    live_capture = (scope.sm.describe_config(live.config) or {}) if live and live.config else {}
    captured = capture.change(scope.endpoint, want.capture, live_capture.get("DataCaptureConfig"))
    refused = capture.problems(spec, scope.options, scope.target)
    if live is not None and live.config == want.name and live.status == "InService":
        changes.append(Change("keep", f"endpoint {scope.endpoint}", f"serving {version}"))
        return changes + ([captured] if captured else []), refused
    problems = strategy_problems(scope, live, strategy) if strategy is not None else []
    problems.extend(refused)
    if captured is not None:
        changes.append(captured)
    for kind, exists in (
        ("model", scope.sm.describe_model(want.name)),
        ("endpoint config", scope.sm.describe_config(want.name)),
    ):
        resource = f"{kind} {want.name}"
        if exists:
            changes.append(Change("keep", resource, f"version {version}"))
        else:
            changes.append(Change("create", resource, f"version {version}"))
    if live is None:
        changes.append(Change("create", f"endpoint {scope.endpoint}", _variant_text(want)))
    else:
        detail = f"{live.version or live.config} -> {version} (blue/green)"
        changes.append(Change("update", f"endpoint {scope.endpoint}", detail))
        if strategy is not None and watched(strategy):
            prefix = live_gate.alarm_prefix(scope.project, scope.target)
            why = "live gate: 5xx rate and p99 over the live variant's baseline, auto-rollback"
            changes.append(Change("update", f"CloudWatch alarms {prefix}*", why))
        keep = {want.name, live.config}
        for name in scope.sm.owned("config", scope.prefix, scope.project, scope.target):
            if name not in keep:
                changes.append(Change("delete", f"endpoint config {name}", "older than previous"))
    return changes, problems


def _desired(
    scope: Scope, version: str, image_ref: str, spec: monitoring.CaptureSpec | None
) -> Desired:
    config = capture.data_capture_config(spec, scope.options)
    return desired(scope.options, scope.endpoint, version, image_ref, scope.repository, config)


def strategy_problems(scope: Scope, live: Live | None, strategy: Strategy) -> list[str]:
    """Why ``deploy`` would refuse ``strategy`` for an update of ``live`` (as ``deploy``
    checks it: the same fleet, the same DeploymentConfig). A new endpoint takes its
    first version all at once (so does one SageMaker left Failed, which deploy deletes
    and creates again): nothing to refuse."""
    if live is None or live.status in (*BUSY, "Failed"):
        return []
    retain = autoscaling.current(scope.aws, scope.endpoint) is not None
    try:
        deployment_config(
            strategy, scope.options, _fleet(scope, live, retain), True, allowance(scope.options)
        )
        check_live_room(scope, strategy)
    except UsageError as exc:
        text = f"SageMaker endpoint {scope.endpoint}: {exc.message}"
        return [f"{text}. What works: {exc.hint}" if exc.hint else text]
    return []


def _variant_text(want: Desired) -> str:
    variant = want.variant
    if "ServerlessConfig" in variant:
        config = variant["ServerlessConfig"]
        return f"serverless {config['MemorySizeInMB']} MB, concurrency {config['MaxConcurrency']}"
    return f"{variant['InitialInstanceCount']} x {variant['InstanceType']}"


def deploy(
    scope: Scope,
    version: str,
    image_ref: str,
    strategy: Strategy,
    progress: Progress,
    annotations: Mapping[str, str] | None = None,
    spec: monitoring.CaptureSpec | None = None,
) -> Deployment:
    """Create or update the endpoint so that ``version`` serves; see the module docstring.
    ``annotations`` (the release's) tag the version's model and endpoint config; ``spec``
    (the release's capture) becomes its DataCaptureConfig (refused as ``plan`` says)."""
    refused = capture.problems(spec, scope.options, scope.target)
    if refused:
        raise UsageError("; ".join(refused))
    sm = scope.sm
    want = _desired(scope, version, image_ref, spec)
    live = sm.live(scope.endpoint)
    check_owned(scope, live)
    details: dict[str, Any] = {"endpoint": scope.endpoint, "endpoint_config": want.name}
    if live is not None and live.config == want.name and live.status == "InService":
        progress(f"endpoint {scope.endpoint} already serves {version}")
        if _sync_autoscaling(scope):
            progress("autoscaling settings updated")
        details["previous_config"] = live.previous_config
        return Deployment(scope.target, version, live.version, changed=False, details=details)
    if live is not None and live.status in BUSY:
        if want.name in (live.pending_config, live.config):
            progress(f"endpoint {scope.endpoint} is already {live.status} to {version}")
            details["previous_config"] = live.config if live.config != want.name else None
            return Deployment(scope.target, version, live.version, changed=True, details=details)
        raise DeployerError(
            f"SageMaker endpoint {scope.endpoint} is {live.status}; it accepts no update now",
            hint=f"wait until `deployer status --to {scope.target}` shows it healthy, then push",
        )
    if live is not None and live.status == "Failed":
        progress(
            f"endpoint {scope.endpoint} is Failed ({live.failure_reason}); SageMaker allows "
            "only deleting it, so deployer deletes and creates it again"
        )
        sm.delete_endpoint(scope.endpoint)
        wait_deleted(scope, progress)
        live = None
    retain = live is not None and autoscaling.current(scope.aws, scope.endpoint) is not None
    config: dict[str, Any] = {}
    if live is not None:  # refuse a strategy SageMaker would refuse, before creating anything
        config = deployment_config(
            strategy, scope.options, _fleet(scope, live, retain), True, allowance(scope.options)
        )
        check_live_room(scope, strategy)
    _ensure_model_and_config(scope, want, progress, annotations or {})
    if live is None:
        progress(f"creating endpoint {scope.endpoint} ({_variant_text(want)})")
        sm.create_endpoint(scope.endpoint, want.name, scope.tags(version))
        details["previous_config"] = None
        return Deployment(scope.target, version, None, changed=True, details=details)
    _release_autoscaling_for(scope, live, want)
    if watched(strategy):
        details.update(_live_alarms(scope, strategy, config, progress))
    progress(f"updating endpoint {scope.endpoint}: {live.version} -> {version} ({strategy})")
    sm.update_endpoint(scope.endpoint, want.name, config, retain)
    details.update(
        previous_config=live.config,
        strategy=str(strategy),
        deployment_config=config,
        update_started_at=time.time(),
    )
    return Deployment(scope.target, version, live.version, changed=True, details=details)


def watched(strategy: Strategy) -> bool:
    """Live gates watch the bakes of a canary or linear update (release.live)."""
    return strategy.live is not None and strategy.kind in ("canary", "linear")


def check_live_room(scope: Scope, strategy: Strategy) -> None:
    """SageMaker watches at most 10 alarms per update; the live gate adds its two."""
    if watched(strategy) and len(scope.options.alarms) + len(live_gate.KINDS) > MAX_ALARMS:
        raise UsageError(
            f"release.live adds {len(live_gate.KINDS)} CloudWatch alarms to the "
            f"{len(scope.options.alarms)} of targets.{scope.target}.alarms; SageMaker "
            f"watches at most {MAX_ALARMS} per update",
            hint=f"list at most {MAX_ALARMS - len(live_gate.KINDS)} alarms, or drop release.live",
        )


def _live_alarms(
    scope: Scope, strategy: Strategy, config: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """Baseline, alarms, and their names in ``config``'s AutoRollbackConfiguration."""
    assert strategy.live is not None
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    seconds = live_gate.window_seconds(routing["WaitIntervalInSeconds"])
    old = live_gate.baseline(scope.aws, scope.endpoint, seconds)
    alarms = live_gate.ensure_alarms(
        scope.aws, scope.project, scope.target, scope.endpoint, old, strategy.live, progress
    )
    watched_alarms = config.setdefault("AutoRollbackConfiguration", {}).setdefault("Alarms", [])
    watched_alarms.extend({"AlarmName": alarm.name} for alarm in alarms)
    return {
        "live_alarms": [alarm.name for alarm in alarms],
        "live_baseline": live_gate.signals_dict(old),
        "live_thresholds": {alarm.name: alarm.threshold for alarm in alarms},
    }


def allowance(options: SageMakerOptions) -> float:
    """Seconds SageMaker needs per traffic step besides the bake: provisioning instances
    (several minutes each) or a serverless variant's capacity."""
    return 300.0 if options.serverless is not None else 600.0


def _fleet(scope: Scope, live: Live, retain: bool) -> int | None:
    """The new fleet's instance count: the current one when it is retained (autoscaled),
    else ``instance_count``; None for serverless (sized in capacity percent)."""
    if scope.options.serverless is not None:
        return None
    if retain:
        variants = live.raw.get("ProductionVariants") or [{}]
        current = variants[0].get("CurrentInstanceCount") or variants[0].get("DesiredInstanceCount")
        if isinstance(current, int) and current > 0:
            return current
    return scope.options.instance_count


def restore_autoscaling(scope: Scope, progress: Progress) -> None:
    """After a failed or rolled-back update the old fleet serves: scale it again."""
    if scope.options.autoscaling is None:
        return
    if autoscaling.ensure(scope.aws, scope.endpoint, scope.options.autoscaling):
        progress(f"autoscaling registered again for {autoscaling.resource_id(scope.endpoint)}")


def _ensure_model_and_config(
    scope: Scope, want: Desired, progress: Progress, annotations: Mapping[str, str]
) -> None:
    sm = scope.sm
    extra = names.annotation_tags(annotations)
    tags = [*scope.tags(want.version), *({"Key": k, "Value": v} for k, v in extra.items())]
    if sm.describe_model(want.name) is None:
        progress(f"creating model {want.name}")
        sm.create_model(want, scope.options.role_arn, tags)
    if sm.describe_config(want.name) is None:
        progress(f"creating endpoint config {want.name}")
        sm.create_config(want, tags)


def _release_autoscaling_for(scope: Scope, live: Live, want: Desired) -> None:
    """SageMaker fails an update that changes an autoscaled variant's instance type."""
    if autoscaling.current(scope.aws, scope.endpoint) is None:
        return
    old = scope.sm.describe_config(live.config) or {}
    variants = old.get("ProductionVariants") or [{}]
    if variants[0].get("InstanceType") != want.variant.get("InstanceType"):
        autoscaling.remove(scope.aws, scope.endpoint)


def _sync_autoscaling(scope: Scope) -> bool:
    if scope.options.autoscaling is not None:
        return autoscaling.ensure(scope.aws, scope.endpoint, scope.options.autoscaling)
    return autoscaling.remove(scope.aws, scope.endpoint)


def finalize(scope: Scope, deployment: Deployment, live: Live, progress: Progress) -> None:
    """After a successful create/update: tag the endpoint, scale, prune old versions."""
    sm = scope.sm
    config = deployment.details.get("endpoint_config", live.config)
    previous = deployment.details.get("previous_config")
    tags = {names.TAG_VERSION: deployment.version}
    if previous and previous != config:
        tags[names.TAG_PREVIOUS_CONFIG] = previous
    sm.add_tags(live.arn, f"endpoint {scope.endpoint}", tags)
    if _sync_autoscaling(scope):
        progress(f"autoscaling registered for {autoscaling.resource_id(scope.endpoint)}")
    keep = {config, previous or config}
    for name in list(sm.owned("config", scope.prefix, scope.project, scope.target)):
        if name not in keep and sm.delete_config(name):
            progress(f"pruned endpoint config {name}")
    for name in list(sm.owned("model", scope.prefix, scope.project, scope.target)):
        if name not in keep and sm.delete_model(name):
            progress(f"pruned model {name}")


def start_rollback(scope: Scope, progress: Progress) -> Deployment:
    """Update the endpoint back to its previous endpoint config (all at once)."""
    sm = scope.sm
    live = sm.live(scope.endpoint)
    if live is None:
        raise UsageError(f"{scope.target} has no SageMaker endpoint {scope.endpoint}")
    check_owned(scope, live)
    previous = live.previous_config
    version = sm.config_version(previous) if previous else None
    if not previous or version is None:
        raise UsageError(f"{scope.target} has no previous version to roll back to")
    if live.status in BUSY:
        raise DeployerError(
            f"SageMaker endpoint {scope.endpoint} is {live.status}; roll back once it settles",
            hint=f"deployer status --to {scope.target}",
        )
    want_variant = (sm.describe_config(previous) or {}).get("ProductionVariants") or [{}]
    want = Desired(previous, version, {}, want_variant[0])
    _release_autoscaling_for(scope, live, want)
    config = deployment_config(Strategy("all-at-once"), scope.options, alarms=False)
    progress(f"rolling {scope.endpoint} back: {live.version} -> {version} ({previous})")
    sm.update_endpoint(scope.endpoint, previous, config)
    details = {
        "endpoint": scope.endpoint,
        "endpoint_config": previous,
        "previous_config": live.config,
        "deployment_config": config,
    }
    return Deployment(scope.target, version, live.version, changed=True, details=details)


def _delete_live_alarms(scope: Scope, progress: Progress) -> list[str]:
    """The live-gate alarms of this target, deleted; without the CloudWatch permissions
    (a project that never used release.live needs none) destroy says so and goes on."""
    try:
        deleted = live_gate.delete_alarms(scope.aws, scope.project, scope.target)
    except AccessDenied as exc:
        prefix = live_gate.alarm_prefix(scope.project, scope.target)
        progress(f"CloudWatch alarms {prefix}* were not checked: {exc.message}")
        return []
    return [f"CloudWatch alarm {name}" for name in deleted]


def wait_deleted(scope: Scope, progress: Progress) -> None:
    deadline = time.monotonic() + scope.options.rollback_timeout
    while scope.sm.describe_endpoint(scope.endpoint) is not None:
        if time.monotonic() > deadline:
            raise DeployerError(f"endpoint {scope.endpoint} was still being deleted after waiting")
        time.sleep(scope.options.poll_interval)
    progress(f"endpoint {scope.endpoint} deleted")


def destroy(scope: Scope, progress: Progress) -> list[str]:
    """Remove the scalable target, endpoint, endpoint configs and models of this target."""
    sm = scope.sm
    removed: list[str] = []
    live = sm.live(scope.endpoint)
    check_owned(scope, live)  # before anything is removed: the endpoint may be another team's
    if autoscaling.remove(scope.aws, scope.endpoint):
        removed.append(f"scalable target {autoscaling.resource_id(scope.endpoint)}")
    if live is not None and live.status == "Deleting":
        progress(f"endpoint {scope.endpoint} is already being deleted")
    elif live is not None and sm.delete_endpoint(scope.endpoint):
        removed.append(f"endpoint {scope.endpoint}")
    for name in list(sm.owned("config", scope.prefix, scope.project, scope.target)):
        if sm.delete_config(name):
            removed.append(f"endpoint config {name}")
    for name in list(sm.owned("model", scope.prefix, scope.project, scope.target)):
        if sm.delete_model(name):
            removed.append(f"model {name}")
    removed.extend(_delete_live_alarms(scope, progress))
    for line in removed:
        progress(f"removed {line}")
    return removed
