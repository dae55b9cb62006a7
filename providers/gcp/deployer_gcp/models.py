"""Model resources: upload one per version (or reuse it) and describe its DeployedModel.

The serving container declares the image's Vertex routes and port; the DeployedModel's
display name is the version, its resources the target's machine type and replicas.
"""

from __future__ import annotations

from typing import Any

from deployer.providers import Progress, Release, routes
from deployer_gcp import names
from deployer_gcp.scope import Scope

CONTAINER_PORT = routes.DEFAULT_PORT


def ensure_model(scope: Scope, release: Release, image_ref: str, progress: Progress) -> str:
    """The Model resource of ``release.version``: reused when present, else uploaded."""
    version = release.version
    found = scope.models(version)
    if found:
        progress(f"reusing model {found[0].name} of {version}")
        return str(found[0].name)
    display = names.model_display_name(scope.project, scope.target, version)
    progress(f"uploading model {display} ({image_ref})")
    api = scope.api
    operation = api.upload_model(
        display,
        image_ref,
        {
            **names.annotation_labels(release.annotations),
            **names.version_labels(scope.project, scope.target, version),
        },
        routes.VERTEX_PREDICT,
        routes.VERTEX_HEALTH,
        scope.options.env,
        CONTAINER_PORT,
    )
    response = api.wait_operation(
        operation,
        f"uploading model {display}",
        scope.deadline(),
        progress,
        api.types.UploadModelResponse,
    )
    return str(response.model)


def deployed_model(scope: Scope, model: str, version: str) -> Any:
    """The DeployedModel to deploy ``model`` (a resource name) as ``version``."""
    types = scope.api.types
    low, high = scope.options.replicas
    deployed = types.DeployedModel(
        model=model,
        display_name=names.deployed_model_display_name(version),
        dedicated_resources=types.DedicatedResources(
            machine_spec=machine_spec(scope),
            min_replica_count=low,
            max_replica_count=high,
        ),
    )
    if scope.options.service_account:
        deployed.service_account = scope.options.service_account
    return deployed


def machine_spec(scope: Scope) -> Any:
    """The replicas' MachineSpec: the machine type, and the GPU when one is configured."""
    options = scope.options
    if options.accelerator_type is None:
        return scope.api.types.MachineSpec(machine_type=options.machine_type)
    return scope.api.types.MachineSpec(
        machine_type=options.machine_type,
        accelerator_type=options.accelerator_type,
        accelerator_count=options.accelerator_count,
    )
