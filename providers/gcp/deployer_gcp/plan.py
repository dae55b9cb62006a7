"""What a push would change on Vertex AI, read without changing anything."""

from __future__ import annotations

from deployer.providers import Change, Plan, Release
from deployer_gcp import capture, gpu, names, traffic
from deployer_gcp.scope import Scope


def plan(scope: Scope, release: Release) -> Plan:
    """The endpoint, model and traffic changes a push of ``release`` would make."""
    changes: list[Change] = []
    notes = gpu.notes(scope.target, scope.options, release)
    endpoint = scope.endpoint()
    display = scope.display()
    if endpoint is None:
        changes.append(Change("create", f"endpoint {display}", f"in {scope.api.parent}"))
    logging = capture.plan_change(scope, endpoint, release)
    if logging is not None:
        changes.append(logging)
    problems = capture.problems(scope, release)
    live = traffic.live_deployed_model(endpoint) if endpoint is not None else None
    current = traffic.version_of(live)
    version = release.version
    if current == version:
        changes.append(Change("keep", f"deployed model {version}", "already live"))
        return Plan(scope.target, changes, problems, notes)
    model = names.model_display_name(scope.project, scope.target, version)
    if scope.models(version):
        changes.append(Change("keep", f"model {model}", "already uploaded"))
    else:
        changes.append(Change("create", f"model {model}", f"image {release.image.ref}"))
    low, high = scope.options.replicas
    changes.append(
        Change(
            "update",
            f"endpoint {display}",
            f"deploy {version} on {machine(scope)} ({low}-{high} replicas); "
            f"traffic {current or 'none'} -> {version}",
        )
    )
    if live is not None:
        changes.append(
            Change(
                "delete",
                f"deployed model {current}",
                "undeployed once the new version has all traffic; its model is kept",
            )
        )
    return Plan(scope.target, changes, problems, notes)


def machine(scope: Scope) -> str:
    """The machine type, with its GPUs when any: "n1-standard-4 + 1 x NVIDIA_TESLA_T4"."""
    options = scope.options
    if options.accelerator_type is None:
        return options.machine_type
    return f"{options.machine_type} + {options.accelerator_count} x {options.accelerator_type}"
